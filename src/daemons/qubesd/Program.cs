using System;
using System.IO;
using System.Threading;
using Qubes.Core;
using Qubes.Core.Api;
using Qubes.Interop.Linux;

namespace Qubes.Tools.Qubesd;

/// <summary>
/// qubesd [--store FILE] [--socket PATH] [--internal-socket PATH] [--create]
/// Holds the system of qubes.xml and serves the Admin API (spec core-stack §9): one request per
/// connection, read to the client's half-close, answered, closed. Every call that changed the
/// system is saved before its reply goes out, so an acknowledged change is on disk. <c>--create</c>
/// makes a store with dom0 alone when there is none. Exit status: 1 when the store cannot be loaded
/// or a socket cannot be set up, 2 on bad usage.
/// </summary>
internal static class Program
{
    private const string Usage = "usage: qubesd [--store FILE] [--socket PATH] [--internal-socket PATH] [--create]";

    private static int Main(string[] args)
    {
        string store = QubesXml.PathFromEnvironment;
        string socket = "/var/run/qubesd.sock";
        string internalSocket = "/var/run/qubesd.internal.sock";
        bool create = false;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--store" when i + 1 < args.Length:
                    store = args[++i];
                    break;
                case "--socket" when i + 1 < args.Length:
                    socket = args[++i];
                    break;
                case "--internal-socket" when i + 1 < args.Length:
                    internalSocket = args[++i];
                    break;
                case "--create":
                    create = true;
                    break;
                default:
                    Console.Error.WriteLine($"qubesd: unexpected argument '{args[i]}'\n{Usage}");
                    return 2;
            }
        }
        QubesApp app;
        try
        {
            QubesXml.RemoveStaleTemporaries(store);
            if (create && !File.Exists(store))
            {
                app = new QubesApp();
                app.AddDom0();
                QubesXml.Save(app, store);
            }
            app = QubesXml.Load(store);
        }
        catch (Exception e) when (e is QubesException or IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"qubesd: {e.Message}");
            return 1;
        }
        Server server = new(app, store);
        try
        {
            SafeFd main = UnixSocket.Listen(socket, 64);
            SafeFd inner = UnixSocket.Listen(internalSocket, 64);
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

/// <summary>Accepts connections and runs each request on its own thread, one request at a time against the system.</summary>
internal sealed class Server(QubesApp app, string store)
{
    private readonly AdminApi _api = new(app);
    private readonly Lock _lock = new();

    public void Serve(SafeFd listener)
    {
        while (true)
        {
            int fd = UnixSocket.Accept(listener.Fd);
            if (fd < 0)
            {
                Thread.Sleep(fd == -(int)Errno.EINTR ? 0 : 10);
                continue;
            }
            SafeFd connection = new(fd);
            new Thread(() => Handle(connection)) { IsBackground = true, Name = "call" }.Start();
        }
    }

    private void Handle(SafeFd connection)
    {
        using (connection)
        {
            byte[] buffer = new byte[AdminRequest.MaxLength + 1];
            int length = 0;
            while (length < buffer.Length)
            {
                int n = Fd.Read(connection.Fd, buffer.AsSpan(length));
                if (n <= 0)
                {
                    break;
                }
                length += n;
            }
            if (!AdminRequest.TryParse(buffer.AsSpan(0, length), out AdminRequest? request, out string? error))
            {
                Console.Error.WriteLine($"qubesd: dropped a request: {error}");
                return;
            }
            lock (_lock)
            {
                byte[] reply;
                bool changed;
                try
                {
                    (reply, changed) = _api.Handle(request);
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    // not a Qubes error: no frame at all, the client reports an empty response (spec §9.3)
                    Console.Error.WriteLine($"qubesd: {request.Method} from {request.Source}: {e}");
                    return;
                }
                if (changed)
                {
                    try
                    {
                        QubesXml.Save(app, store);
                    }
                    catch (IOException e)
                    {
                        // Memory now differs from the disk: refuse the call and stop, so that the
                        // next start reloads what was last acknowledged.
                        Console.Error.WriteLine($"qubesd: saving {store}: {e.Message}; exiting");
                        Fd.WriteAll(connection.Fd, AdminReply.Exception("QubesException", $"Failed to save qubes.xml: {e.Message}"));
                        Environment.Exit(1);
                    }
                }
                Fd.WriteAll(connection.Fd, reply);
            }
        }
    }
}
