// the tests run Linux tools and look at Unix modes
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
