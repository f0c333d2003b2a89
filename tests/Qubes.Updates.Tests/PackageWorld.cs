using System;
using System.Diagnostics;
using System.IO;
using System.Threading.Tasks;
using Xunit;
using Qubes.Tests;

namespace Qubes.Updates.Tests;

/// <summary>
/// What every test here needs, made once: two gpg keys (a trusted one, imported into an rpm
/// database, and a stranger's), a tiny package built with rpmbuild, and copies of it signed
/// with each key and left unsigned; and where the built programs are.
/// </summary>
public sealed class PackageWorld : IDisposable
{
    public const string TrustedKey = "updates@example.invalid";
    public const string StrangerKey = "stranger@example.invalid";

    private static readonly string[] s_tools = ["rpmbuild", "rpmsign", "rpmkeys", "gpg", "createrepo_c"];

    public PackageWorld()
    {
        foreach (string tool in s_tools)
        {
            if (!File.Exists(Path.Combine("/usr/bin", tool)))
            {
                throw new InvalidOperationException($"/usr/bin/{tool} is missing: install the Debian packages rpm, createrepo-c and gnupg");
            }
        }
        Root = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), $"upd-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}")).FullName;
        GnupgHome = Directory.CreateDirectory(Path.Combine(Root, "gnupg")).FullName;
        File.SetUnixFileMode(GnupgHome, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        NewKey("Updates Test", TrustedKey);
        NewKey("Stranger", StrangerKey);
        RpmDatabase = Directory.CreateDirectory(Path.Combine(Root, "rpmdb")).FullName;
        string publicKey = Path.Combine(Root, "trusted.asc");
        File.WriteAllText(publicKey, Run("/usr/bin/gpg", "--batch", "--armor", "--export", TrustedKey));
        Run("/usr/bin/rpmkeys", "--dbpath", RpmDatabase, "--import", publicKey);

        Unsigned = Build("tiny", "1.0");
        Signed = Sign(Unsigned, "signed", TrustedKey);
        SignedByStranger = Sign(Unsigned, "stranger", StrangerKey);
        SignedV3 = Sign(Unsigned, "v3", TrustedKey, "--rpmv3");
        Second = Sign(Build("other", "2.5"), "signed", TrustedKey);

        Artifacts = TestRepository.File("artifacts/bin");
    }

    public string Root { get; }

    public string GnupgHome { get; }

    /// <summary>An rpm database that trusts <see cref="TrustedKey"/> only.</summary>
    public string RpmDatabase { get; }

    public string Unsigned { get; }

    public string Signed { get; }

    public string SignedByStranger { get; }

    /// <summary>Signed with header-and-payload (v3) signatures as well.</summary>
    public string SignedV3 { get; }

    /// <summary>Another package, signed by the trusted key.</summary>
    public string Second { get; }

    /// <summary>artifacts/bin of the repository.</summary>
    public string Artifacts { get; }

    /// <summary>A built program of this repository's runtime build (an apphost started through a link finds its assembly).</summary>
    public string Program(string project, string name) => Path.Combine(Artifacts, project, "release", name);

    public void Dispose()
    {
        // gpg started an agent for the temporary home: it goes with it
        Run("/usr/bin/gpgconf", "--kill", "gpg-agent");
        Directory.Delete(Root, recursive: true);
    }

    private void NewKey(string name, string email)
    {
        string parameters = Path.Combine(Root, email + ".params");
        File.WriteAllText(parameters, $"%no-protection\nKey-Type: RSA\nKey-Length: 2048\nName-Real: {name}\nName-Email: {email}\nExpire-Date: 0\n%commit\n");
        Run("/usr/bin/gpg", "--batch", "--gen-key", parameters);
    }

    private string Build(string name, string version)
    {
        string top = Path.Combine(Root, "build-" + name);
        Directory.CreateDirectory(Path.Combine(top, "SPECS"));
        string spec = Path.Combine(top, "SPECS", name + ".spec");
        File.WriteAllText(spec, $"""
            Name: {name}
            Version: {version}
            Release: 1
            Summary: a package small enough for tests
            License: MIT
            BuildArch: noarch
            %description
            A single file.
            %install
            mkdir -p %{"{"}buildroot{"}"}/usr/share/{name}
            echo hello > %{"{"}buildroot{"}"}/usr/share/{name}/hello
            %files
            /usr/share/{name}/hello
            """);
        Run("/usr/bin/rpmbuild", "--define", "_topdir " + top, "--quiet", "-bb", spec);
        string built = Path.Combine(top, "RPMS", "noarch", $"{name}-{version}-1.noarch.rpm");
        Assert.True(File.Exists(built), $"rpmbuild made no {built}");
        string unsigned = Path.Combine(Directory.CreateDirectory(Path.Combine(Root, "unsigned")).FullName, Path.GetFileName(built));
        File.Copy(built, unsigned);
        return unsigned;
    }

    private string Sign(string package, string kind, string key, string? extra = null)
    {
        string signed = Path.Combine(Directory.CreateDirectory(Path.Combine(Root, kind)).FullName, Path.GetFileName(package));
        File.Copy(package, signed);
        string[] args = ["--define", "_gpg_name " + key, "--define", "_gpg_path " + GnupgHome, "--define", "__gpg /usr/bin/gpg", "--addsign", signed];
        Run("/usr/bin/rpmsign", extra == null ? args : [extra, .. args]);
        return signed;
    }

    /// <summary>Runs a tool to its end; its standard output; a failure fails the test with its error output.</summary>
    public string Run(string program, params string[] args)
    {
        ProcessStartInfo psi = new(program, args)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        psi.Environment["GNUPGHOME"] = GnupgHome;
        using Process p = Process.Start(psi)!;
        p.StandardInput.Close();
        Task<string> errors = p.StandardError.ReadToEndAsync();
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"{program} {string.Join(' ', args)} failed ({p.ExitCode}): {errors.Result}");
        return output;
    }
}

[CollectionDefinition(Name)]
public sealed class PackageCollection : ICollectionFixture<PackageWorld>
{
    public const string Name = "packages";
}
