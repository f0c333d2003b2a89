using System;
using System.Collections.Generic;
using System.IO;
using System.Threading;
using Qubes.Cli;
using Qubes.Core;
using Qubes.Interop.Linux;

namespace Qubes.Tools.Qubesd;

/// <summary>
/// qubesd [--store FILE] [--socket PATH] [--internal-socket PATH] [--create] | qubesd --state DIR
/// Holds the system of qubes.xml and serves the Admin API (spec core-stack §9): one request per
/// connection, read to the client's half-close, answered, closed. Every call that changed the
/// system is saved before its reply goes out, so an acknowledged change is on disk. <c>--create</c>
/// makes a store with dom0 alone when there is none.
/// With <c>--state DIR</c> it runs the system kept in DIR (<see cref="SystemLayout"/>) on the
/// loopback hypervisor whose broker serves DIR/lohv: qubes start as sandboxes, the policy daemon
/// reads the qubes from DIR/system-info.json (rewritten on every change), dom0's qrexec services
/// <c>admin.*</c> lead to the socket, and the qubes with <c>autostart</c> are started.
/// SIGTERM stops every qube and then qubesd. Exit status: 1 when the store cannot be loaded or a
/// socket cannot be set up, 2 on bad usage.
/// </summary>
internal static class Program
{
    private static FileStream? s_storeLock;

    /// <summary>The command line.</summary>
    internal static Command Command { get; } = new("qubesd", HelpStyle.Argparse,
        Command.ArgparseHelp,
        new Option($"the qubes.xml to serve (default: $QUBES_XML_PATH, else {QubesXml.DefaultPath})", "--store") { Metavar = "FILE" },
        new Option("the Admin API socket (default: /var/run/qubesd.sock)", "--socket") { Metavar = "PATH" },
        new Option("the internal socket (default: /var/run/qubesd.internal.sock)", "--internal-socket") { Metavar = "PATH" },
        new Option("make a store with dom0 alone when there is none", "--create"),
        new Option("run the system kept in DIR on the loopback hypervisor: its store and sockets, created when missing", "--state") { Metavar = "DIR" })
    {
        Description = "Qubes OS daemon: holds the system of qubes.xml and serves the Admin API.",
    };

    internal static int Main(string[] args) => Command.Run(Console.Out, Console.Error, () => Run(args));

    private static int Run(string[] args)
    {
        // what this daemon inherited from whoever started it goes no further
        Qubes.Interop.Linux.Fd.CloseInheritedOnExec();
        string store = QubesXml.PathFromEnvironment;
        string socket = "/var/run/qubesd.sock";
        string internalSocket = "/var/run/qubesd.internal.sock";
        bool create = false;
        SystemLayout? layout = null;
        for (int i = 0; i < args.Length; i++)
        {
            IReadOnlyList<Parsed> options = Command.IsOption(args[i]) ? Command.Read(args, ref i) : [new Parsed(null, args[i], [])];
            foreach (Parsed parsed in options)
            {
                switch (parsed.Option?.Name)
                {
                    case "--store":
                        store = parsed.Value!;
                        break;
                    case "--socket":
                        socket = parsed.Value!;
                        break;
                    case "--internal-socket":
                        internalSocket = parsed.Value!;
                        break;
                    case "--create":
                        create = true;
                        break;
                    case "--state":
                        layout = new SystemLayout(parsed.Value!);
                        (store, socket, internalSocket, create) = (layout.QubesXml, layout.QubesdSocket, layout.QubesdInternalSocket, true);
                        break;
                    default:
                        throw new UsageException($"unrecognized arguments: {parsed.Text}");
                }
            }
        }
        Server server = new(store, layout);
        try
        {
            // one qubesd per store: an exclusive lock (flock underneath) held for the process's life
            s_storeLock = new FileStream(store + ".lock", FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e)
        {
            Console.Error.WriteLine($"qubesd: {store} is in use by another qubesd ({e.Message})");
            return 1;
        }
        try
        {
            QubesXml.RemoveStaleTemporaries(store);
            if (create && !File.Exists(store))
            {
                QubesApp fresh = new();
                fresh.AddDom0();
                QubesXml.Save(fresh, store);
            }
            server.Load();
        }
        catch (Exception e) when (e is QubesException or IOException or UnauthorizedAccessException or Platform.PlatformException)
        {
            Console.Error.WriteLine($"qubesd: {e.Message}");
            return 1;
        }
        try
        {
            SafeFd main = UnixSocket.Listen(socket, 64);
            SafeFd inner = UnixSocket.Listen(internalSocket, 64);
            server.StartSystem();
            new Thread(() => server.Serve(inner)) { IsBackground = true, Name = "internal" }.Start();
            Console.Error.WriteLine($"qubesd: serving {socket} and {internalSocket}, store {store}");
            server.Serve(main);
        }
        catch (Exception e) when (e is LinuxException or IOException)
        {
            Console.Error.WriteLine($"qubesd: {e.Message}");
            return 1;
        }
        return 0;
    }
}

