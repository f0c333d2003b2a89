using System;

namespace Qubes.Front;

/// <summary>qubes: the front command. <c>qubes demo</c> runs the system's main job on the loopback hypervisor.</summary>
internal static class Program
{
    private static int Main(string[] args)
    {
        string command = args.Length > 0 ? args[0] : "help";
        switch (command)
        {
            case "demo":
                return Demo.Run();
            case "help":
            case "--help":
            case "-h":
                Console.WriteLine("usage: qubes demo        run the loopback-hypervisor demonstration");
                return 0;
            default:
                Console.Error.WriteLine($"qubes: unknown command '{command}' (try 'qubes help')");
                return 2;
        }
    }
}
