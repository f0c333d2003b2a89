using System;
using System.Collections.Generic;
using System.IO;
using System.Net.Sockets;

namespace Qubes.Qrexec.Tests.Services;

/// <summary>A temporary directory tree for lookup tests, removed on dispose.</summary>
internal sealed class ServiceTestDirectory : IDisposable
{
    private readonly List<Socket> _sockets = [];

    public ServiceTestDirectory()
    {
        if (OperatingSystem.IsWindows())
        {
            throw new PlatformNotSupportedException("service lookup is Unix-only");
        }
        Root = Directory.CreateTempSubdirectory("qrx-").FullName;
    }

    public string Root { get; }

    /// <summary>Creates (if needed) and returns the subdirectory <paramref name="name"/>.</summary>
    public string Dir(string name) => Directory.CreateDirectory(Path.Combine(Root, name)).FullName;

    public string Executable(string directory, string name)
    {
        string path = Path.Combine(directory, name);
        File.WriteAllText(path, "#!/bin/sh\nexit 0\n");
        SetMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }

    public string PlainFile(string directory, string name, string content = "")
    {
        string path = Path.Combine(directory, name);
        File.WriteAllText(path, content);
        SetMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        return path;
    }

    public string Symlink(string directory, string name, string target)
    {
        string path = Path.Combine(directory, name);
        File.CreateSymbolicLink(path, target);
        return path;
    }

    public string UnixSocket(string directory, string name)
    {
        string path = Path.Combine(directory, name);
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Bind(new UnixDomainSocketEndPoint(path));
        _sockets.Add(socket);
        return path;
    }

    /// <summary>chmod (the constructor already refused Windows; the guard is for the platform analyzer).</summary>
    public static void SetMode(string path, UnixFileMode mode)
    {
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, mode);
        }
    }

    public void Dispose()
    {
        foreach (Socket socket in _sockets)
        {
            socket.Dispose();
        }
        Directory.Delete(Root, recursive: true);
    }
}
