// the front command runs a system of Linux sandboxes
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
