using System.Text;
using Qubes.Qrexec.Policy;

namespace Qubes.Qrexec.Tests.Policy;

/// <summary>
/// The system and policy of spec qrexec-policy §13.1-§13.2. Every qube but dom0 has dom0 as its GUI
/// qube, as qubesd's system information says by default: asks and notifications reach someone.
/// </summary>
internal static class WorkedExample
{
    public const string SystemJson = """
        {"domains": {
          "dom0": {"type": "AdminVM", "tags": [], "default_dispvm": "default-dvm", "template_for_dispvms": false,
                   "power_state": "Running", "uuid": "00000000-0000-0000-0000-000000000000", "internal": null, "guivm": null},
          "work": {"type": "AppVM", "tags": ["work"], "default_dispvm": "work-dvm", "template_for_dispvms": false,
                   "power_state": "Running", "uuid": "11111111-1111-4111-8111-111111111111", "guivm": "dom0", "icon": "appvm-red"},
          "work-email": {"type": "AppVM", "tags": ["work"], "default_dispvm": "work-dvm", "template_for_dispvms": false,
                   "power_state": "Halted", "uuid": "22222222-2222-4222-8222-222222222222", "guivm": "dom0"},
          "personal": {"type": "AppVM", "tags": ["personal"], "default_dispvm": "default-dvm", "template_for_dispvms": false,
                   "power_state": "Running", "uuid": "33333333-3333-4333-8333-333333333333", "guivm": "dom0"},
          "vault": {"type": "AppVM", "tags": ["secure"], "default_dispvm": null, "template_for_dispvms": false,
                   "power_state": "Halted", "uuid": "44444444-4444-4444-8444-444444444444", "guivm": "dom0"},
          "work-printing": {"type": "AppVM", "tags": ["work", "printing"], "default_dispvm": "default-dvm", "template_for_dispvms": true,
                   "power_state": "Halted", "uuid": "55555555-5555-4555-8555-555555555555", "guivm": "dom0"},
          "work-dvm": {"type": "AppVM", "tags": ["work"], "default_dispvm": "default-dvm", "template_for_dispvms": true,
                   "power_state": "Halted", "uuid": "66666666-6666-4666-8666-666666666666", "guivm": "dom0"},
          "default-dvm": {"type": "AppVM", "tags": [], "default_dispvm": "default-dvm", "template_for_dispvms": true,
                   "power_state": "Halted", "uuid": "77777777-7777-4777-8777-777777777777", "guivm": "dom0"},
          "mgmt-dvm": {"type": "AppVM", "tags": [], "default_dispvm": "default-dvm", "template_for_dispvms": true,
                   "power_state": "Halted", "uuid": "88888888-8888-4888-8888-888888888888", "internal": true, "guivm": "dom0"}
        }}
        """;

    public const string Policy = """
        qubes.Filecopy  * @tag:work @tag:work              allow
        qubes.Filecopy  * @tag:work @anyvm                 deny
        qubes.Filecopy  * @anyvm    vault                  deny
        qubes.Filecopy  * @anyvm    @anyvm                 ask default_target=work
        qubes.PrintFile * @tag:work @dispvm:work-printing  allow
        qubes.PrintFile * @tag:work @dispvm                allow target=@dispvm:work-printing
        qubes.PrintFile * @anyvm    @anyvm                 deny
        qubes.OpenURL   * personal  @default               ask default_target=@dispvm
        qubes.OpenURL   * @anyvm    @dispvm                allow
        qubes.OpenURL   * @anyvm    @anyvm                 deny
        qubes.GetDate   * @anyvm    @default               allow target=@adminvm
        qubes.Backup    * work      vault                  allow autostart=no
        qubes.Backup    * work      personal               allow autostart=no user=root
        """;

    public static SystemInfo System { get; } = SystemInfo.Parse(SystemJson);

    public static PolicyEngine Engine(string? policy = null, SystemInfo? system = null)
        => new(PolicyLoader.System.LoadText(policy ?? Policy, "/etc/qubes/policy.d/50-example.policy"), system ?? System);

    /// <summary>The answer lines of a decision, joined by '/' for comparing with the spec's tables.</summary>
    public static string Answer(PolicyEngine engine, in PolicyResult result) => engine.FormatAnswer(result).Replace('\n', '/');

    public static string Lines(params string[] lines)
    {
        StringBuilder text = new();
        foreach (string line in lines)
        {
            text.Append(line).Append('\n');
        }
        return text.ToString();
    }
}
