using System;
using System.IO;
using System.Security.Cryptography;
using Qubes.Interop.Linux;

namespace Qubes.Tools.Qubesd;

/// <summary>
/// The root layer of a new template (or standalone qube): its own <c>/etc</c> and an empty
/// <c>usr</c> over the host's <c>/usr</c>. The <c>/etc</c> is made here, not the host's: the
/// accounts of a qube (root, and <c>user</c> with uid 1000), its own host name and machine id, no
/// name server, and from the host only what programs need to run and nothing that is a secret of
/// dom0 (no password hashes, keys, host identity or network set-up): the dynamic linker's
/// configuration, the alternatives links, shell start-up files, the skeleton home, certificates,
/// time zone, fonts. The qrexec services of a fresh template come from <c>template-root/</c>
/// beside qubesd. Files hold the qube's own ids (0 for its root), as the sandbox expects.
/// </summary>
internal static class TemplateImage
{
    /// <summary>What a fresh template's root holds besides /etc (shipped beside qubesd).</summary>
    private static readonly string s_shipped = Path.Combine(AppContext.BaseDirectory, "template-root");

    /// <summary>Entries of the host's /etc a qube may see: nothing secret, nothing about dom0 itself.</summary>
    private static readonly string[] s_fromHost =
    [
        "alternatives", "bash.bashrc", "debian_version", "environment", "fonts", "gai.conf", "host.conf", "inputrc",
        "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "locale.alias", "localtime", "login.defs", "mime.types", "os-release",
        "profile", "profile.d", "shells", "skel", "timezone", "ca-certificates.conf", "ssl/certs", "ssl/openssl.cnf",
    ];

    /// <summary>Makes <paramref name="layer"/> (which must not exist) for the qube <paramref name="name"/>.</summary>
    public static void Create(string layer, string name)
    {
        string etc = Path.Combine(layer, "etc");
        // /usr/local is the qube's own (its private volume's usrlocal): the host's is hidden, by an opaque directory
        string local = Path.Combine(layer, "usr", "local");
        Directory.CreateDirectory(local);
        if (!Xattr.Set(local, "trusted.overlay.opaque", "y"u8))
        {
            throw new IOException($"{local}: setxattr trusted.overlay.opaque: {LastError.Get()}");
        }
        Directory.CreateDirectory(Path.Combine(etc, "ssl"));
        foreach (string entry in s_fromHost)
        {
            string host = Path.Combine("/etc", entry);
            string copy = Path.Combine(etc, entry);
            if (new FileInfo(host).LinkTarget is { } target)
            {
                File.CreateSymbolicLink(copy, target);
            }
            else if (Directory.Exists(host))
            {
                DirectoryTree.Copy(host, copy);
            }
            else if (File.Exists(host))
            {
                DirectoryTree.CopyFile(host, copy);
            }
        }
        Write(etc, "passwd", "root:x:0:0:root:/root:/bin/bash\nuser:x:1000:1000:user:/home/user:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n");
        Write(etc, "group", "root:x:0:\ntty:x:5:user\nusers:x:100:user\nuser:x:1000:\nnogroup:x:65534:\n");
        Write(etc, "shadow", "root:!:19000::::::\nuser:!:19000::::::\nnobody:*:19000::::::\n", UnixFileMode.UserRead | UnixFileMode.UserWrite);
        Write(etc, "hostname", name + "\n");
        Write(etc, "hosts", $"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{name}\n");
        Write(etc, "nsswitch.conf", "passwd: files\ngroup: files\nshadow: files\nhosts: files\nnetworks: files\nprotocols: files\nservices: files\n");
        Write(etc, "resolv.conf", string.Empty);
        Write(etc, "machine-id", Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16)) + "\n");
        string shipped = Path.Combine(s_shipped, "etc");
        foreach (string directory in Directory.GetDirectories(shipped))
        {
            DirectoryTree.Copy(directory, Path.Combine(etc, Path.GetFileName(directory)));
        }
    }

    private static void Write(string directory, string file, string content, UnixFileMode mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead)
    {
        string path = Path.Combine(directory, file);
        File.WriteAllText(path, content);
        File.SetUnixFileMode(path, mode);
    }
}
