// qubesd runs qubes as Linux sandboxes
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
