using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;
using Qubes.Qrexec.Policy;
using Xunit;

namespace Qubes.Qrexec.Tests.Policy;

/// <summary>Directories, file names, includes and the legacy import (spec qrexec-policy §1, §6, §11).</summary>
public sealed partial class PolicyLoaderTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("qubes-policy-test-").FullName;
    private readonly string _run;
    private readonly string _etc;
    private readonly string _legacy;

    public PolicyLoaderTests()
    {
        _run = Directory.CreateDirectory(Path.Combine(_root, "run")).FullName;
        _etc = Directory.CreateDirectory(Path.Combine(_root, "etc")).FullName;
        _legacy = Directory.CreateDirectory(Path.Combine(_root, "legacy")).FullName;
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private PolicyLoader Loader => new([_run, _etc], _legacy);

    private static void Write(string directory, string name, params string[] lines)
    {
        string path = Path.Combine(directory, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllLines(path, lines);
    }

    private List<string> Rules() => Loader.Load().Select(static r => r.ToString()).ToList();

    [Fact]
    public void Files_load_in_name_order_and_the_runtime_copy_wins()
    {
        Write(_etc, "90-default.policy", "svc * @anyvm @anyvm deny");
        Write(_etc, "30-user.policy", "svc * work vault allow");
        Write(_etc, "50-same.policy", "svc * etc etc allow");
        Write(_run, "50-same.policy", "svc * run run allow");
        Write(_run, "10-first.policy", "svc * first first allow");
        Assert.Equal(
            ["svc * first first allow", "svc * work vault allow", "svc * run run allow", "svc * @anyvm @anyvm deny"],
            Rules());
    }

    [Fact]
    public void Other_entries_are_ignored_silently()
    {
        Write(_etc, "30-user.policy", "svc * work vault allow");
        Write(_etc, ".hidden.policy", "this is not a rule");
        Write(_etc, "notes.txt", "nor is this");
        Write(_etc, "30-user.policy.rpmsave", "nor this");
        Directory.CreateDirectory(Path.Combine(_etc, "include.policy"));
        File.CreateSymbolicLink(Path.Combine(_etc, "40-dangling.policy"), Path.Combine(_root, "nowhere"));
        Assert.Equal(["svc * work vault allow"], Rules());
    }

    [Fact]
    public void A_symbolic_link_to_a_file_counts()
    {
        Write(_root, "elsewhere", "svc * work vault allow");
        File.CreateSymbolicLink(Path.Combine(_etc, "40-link.policy"), Path.Combine(_root, "elsewhere"));
        Assert.Equal(["svc * work vault allow"], Rules());
    }

    [Theory]
    [InlineData("30-User.policy")]
    [InlineData("30 user.policy")]
    [InlineData("30-usér.policy")]
    [InlineData("30+user.policy")]
    public void An_invalid_file_name_makes_the_whole_policy_unusable(string name)
    {
        Write(_etc, "30-user.policy", "svc * work vault allow");
        Write(_run, name, "svc * work vault allow");
        PolicySyntaxException e = Assert.Throws<PolicySyntaxException>(() => Loader.Load());
        Assert.Contains("invalid policy file name", e.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_syntax_error_in_any_file_names_the_file_and_line()
    {
        Write(_etc, "30-user.policy", "svc * work vault allow");
        Write(_etc, "50-broken.policy", "# comment", "svc * work vault alow");
        PolicySyntaxException e = Assert.Throws<PolicySyntaxException>(() => Loader.Load());
        Assert.Equal($"{Path.Combine(_etc, "50-broken.policy")}:2: invalid action 'alow'", e.Message);
    }

    [Fact]
    public void Include_inserts_in_place_relative_to_the_top_level_file()
    {
        Write(_etc, "include/extra", "svc * inc inc allow", "!include include/nested");
        Write(_etc, "include/nested", "svc * nested nested allow");
        Write(_etc, "30-user.policy", "svc * before before allow", "!include include/extra", "svc * after after allow");
        Assert.Equal(["svc * before before allow", "svc * inc inc allow", "svc * nested nested allow", "svc * after after allow"], Rules());
    }

    [Fact]
    public void Include_of_an_absolute_path_and_errors()
    {
        Write(_root, "abs", "svc * abs abs allow");
        Write(_etc, "30-user.policy", $"!include {Path.Combine(_root, "abs")}");
        Assert.Equal(["svc * abs abs allow"], Rules());
        Write(_etc, "30-user.policy", "!include missing");
        Assert.Contains("not a file", Assert.Throws<PolicySyntaxException>(() => Loader.Load()).Reason, StringComparison.Ordinal);
        Write(_etc, "30-user.policy", "!include include");
        Directory.CreateDirectory(Path.Combine(_etc, "include"));
        Assert.Contains("not a file", Assert.Throws<PolicySyntaxException>(() => Loader.Load()).Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void An_error_inside_an_include_names_the_included_file()
    {
        Write(_etc, "include/bad", "svc * work");
        Write(_etc, "30-user.policy", "!include include/bad");
        PolicySyntaxException e = Assert.Throws<PolicySyntaxException>(() => Loader.Load());
        Assert.Equal((Path.Combine(_etc, "include/bad"), 1), (e.File, e.Line));
    }

    [Fact]
    public void An_include_cycle_is_an_error()
    {
        Write(_etc, "include/a", "!include include/b");
        Write(_etc, "include/b", "!include include/a");
        Write(_etc, "30-user.policy", "!include include/a");
        Assert.Contains("too deep", Assert.Throws<PolicySyntaxException>(() => Loader.Load()).Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Include_dir_loads_its_policy_files_in_name_order()
    {
        Write(_etc, "include/d/20-b.policy", "svc * b b allow");
        Write(_etc, "include/d/10-a.policy", "svc * a a allow");
        Write(_etc, "include/d/readme", "not loaded");
        Write(_etc, "30-user.policy", "!include-dir include/d");
        Assert.Equal(["svc * a a allow", "svc * b b allow"], Rules());
        Write(_etc, "30-user.policy", "!include-dir include/none");
        Assert.Contains("not a directory", Assert.Throws<PolicySyntaxException>(() => Loader.Load()).Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Include_service_reads_the_legacy_format()
    {
        Write(_etc, "include/old-filecopy", "$tag:work $tag:work allow", "$anyvm $dispvm allow,target=$dispvm:work-printing");
        Write(_etc, "30-user.policy", "!include-service qubes.Filecopy * include/old-filecopy");
        Assert.Equal(["qubes.Filecopy * @tag:work @tag:work allow", "qubes.Filecopy * @anyvm @dispvm allow target=@dispvm:work-printing"], Rules());
        Write(_etc, "30-user.policy", "!include-service * +arg include/old-filecopy");
        Assert.Throws<PolicySyntaxException>(() => Loader.Load());
    }

    [Fact]
    public void A_legacy_include_loads_with_the_same_service_and_must_be_a_file()
    {
        Write(_etc, "include/more", "work vault allow");
        Write(_etc, "include/old", "$include:include/more", "$anyvm $anyvm deny");
        Write(_etc, "30-user.policy", "!include-service qubes.Svc +arg include/old");
        Assert.Equal(["qubes.Svc +arg work vault allow", "qubes.Svc +arg @anyvm @anyvm deny"], Rules());
        Write(_etc, "include/old", "$include:include/none");
        PolicySyntaxException e = Assert.Throws<PolicySyntaxException>(() => Loader.Load());
        Assert.Equal((Path.Combine(_etc, "include/old"), 1), (e.File, e.Line));
    }

    [Fact]
    public void Compat_imports_the_legacy_directory_with_implicit_denials_after_argument_files()
    {
        Write(_legacy, "qubes.Filecopy", "$anyvm $anyvm ask");
        Write(_legacy, "qubes.Filecopy+secret", "work vault allow");
        Write(_legacy, "qubes.Filecopy.rpmsave", "$anyvm $anyvm allow");
        Write(_legacy, ".qubes.Filecopy.swp", "junk");
        Write(_etc, "35-compat.policy", "!compat-4.0");
        Assert.Equal(
        [
            "qubes.Filecopy +secret work vault allow",
            "qubes.Filecopy +secret @anyvm @anyvm deny",
            "qubes.Filecopy +secret @anyvm @adminvm deny",
            "qubes.Filecopy * @anyvm @anyvm ask",
        ], Rules());
    }

    [Fact]
    public void Include_directives_refuse_anything_but_a_regular_file()
    {
        string include = Directory.CreateDirectory(Path.Combine(_etc, "include")).FullName;
        Assert.Equal(0, MakeFifo(Path.Combine(include, "fifo"), 0x180));
        File.CreateSymbolicLink(Path.Combine(include, "to-null"), "/dev/null");
        Write(include, "real", "svc * work vault allow");
        File.CreateSymbolicLink(Path.Combine(include, "to-real"), Path.Combine(include, "real"));
        // upstream's is_file(): a FIFO or a device is no file to include (reading one would block or never end)
        foreach (string directive in (string[])["!include include/fifo", "!include /dev/null", "!include include/to-null",
            "!include-service svc * include/fifo", "!include-service svc * /dev/zero"])
        {
            Write(_etc, "30-user.policy", "# first", directive);
            PolicySyntaxException e = Assert.Throws<PolicySyntaxException>(() => Loader.Load());
            Assert.Equal((Path.Combine(_etc, "30-user.policy"), 2), (e.File, e.Line));
            Assert.Contains("not a file", e.Reason, StringComparison.Ordinal);
        }
        Write(include, "old", "$include:/dev/null");
        Write(_etc, "30-user.policy", "!include-service svc * include/old");
        Assert.Contains("not a file", Assert.Throws<PolicySyntaxException>(() => Loader.Load()).Reason, StringComparison.Ordinal);
        // a symbolic link that ends at a regular file is one
        Write(include, "old", "work vault allow");
        File.CreateSymbolicLink(Path.Combine(include, "to-old"), Path.Combine(include, "old"));
        Write(_etc, "30-user.policy", "!include include/to-real", "!include-service other * include/to-old");
        Assert.Equal(["svc * work vault allow", "other * work vault allow"], Rules());
    }

    [Fact]
    public void A_fifo_or_a_device_among_the_policy_or_legacy_files_is_skipped()
    {
        Write(_etc, "30-user.policy", "svc * work vault allow");
        Write(_etc, "35-compat.policy", "!compat-4.0");
        Assert.Equal(0, MakeFifo(Path.Combine(_etc, "40-fifo.policy"), 0x180));
        File.CreateSymbolicLink(Path.Combine(_run, "45-null.policy"), "/dev/null");
        Assert.Equal(0, MakeFifo(Path.Combine(_legacy, "qubes.Fifo"), 0x180));
        Write(_legacy, "qubes.Real", "$anyvm $anyvm deny");
        Assert.Equal(["svc * work vault allow", "qubes.Real * @anyvm @anyvm deny"], Rules());
    }

    [Fact]
    public void Policy_files_are_utf8_text_whose_lines_end_as_pythons_universal_newlines()
    {
        string file = Path.Combine(_etc, "30-user.policy");
        File.WriteAllBytes(file, Encoding.UTF8.GetBytes("svc * a a allow\rsvc * b b allow\r\n# caf\u00e9\nsvc * c c allow"));
        Assert.Equal(["svc * a a allow", "svc * b b allow", "svc * c c allow"], Rules());
        Assert.Equal([1, 2, 4], Loader.Load().Select(static r => r.Line));

        // not UTF-8: the policy is unusable, as upstream cannot decode it either
        File.WriteAllBytes(file, Encoding.Latin1.GetBytes("# caf\u00e9\nsvc * a a allow\n"));
        Assert.Contains("not UTF-8", Assert.Throws<PolicySyntaxException>(() => Loader.Load()).Reason, StringComparison.Ordinal);
        File.WriteAllBytes(file, [.. Encoding.Unicode.GetPreamble(), .. Encoding.Unicode.GetBytes("svc * a a allow\n")]);
        Assert.Contains("not UTF-8", Assert.Throws<PolicySyntaxException>(() => Loader.Load()).Reason, StringComparison.Ordinal);

        // a UTF-8 byte order mark at the start is skipped (upstream would read it as part of the first field)
        File.WriteAllBytes(file, [.. Encoding.UTF8.GetPreamble(), .. Encoding.UTF8.GetBytes("svc * a a allow\n")]);
        Assert.Equal(["svc * a a allow"], Rules());
    }

    [LibraryImport("libc", EntryPoint = "mkfifo", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int MakeFifo(string path, uint mode);

    [Fact]
    public void Load_text_parses_as_if_from_a_file()
    {
        IReadOnlyList<PolicyRule> rules = Loader.LoadText("svc * work vault allow\n\nsvc * @anyvm @anyvm deny\n", Path.Combine(_etc, "x.policy"));
        Assert.Equal(2, rules.Count);
        Assert.Equal(3, rules[1].Line);
    }
}
