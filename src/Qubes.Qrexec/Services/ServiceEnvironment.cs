using System;
using System.Collections.Generic;
using System.Globalization;

namespace Qubes.Qrexec.Services;

/// <summary>The argument vector and environment of an executable service (spec §9.4).</summary>
public static class ServiceEnvironment
{
    /// <summary>Names starting with this are dropped from the inherited environment (but see the two kept below).</summary>
    public const string ReservedPrefix = "QREXEC";
    /// <summary>Kept from the inherited environment: the service search path.</summary>
    public const string ServicePathVariable = "QREXEC_SERVICE_PATH";
    /// <summary>Pid of the per-call agent process; kept from the inherited environment unless given.</summary>
    public const string AgentPidVariable = "QREXEC_AGENT_PID";
    /// <summary>The descriptor token as received.</summary>
    public const string ServiceFullNameVariable = "QREXEC_SERVICE_FULL_NAME";
    /// <summary>The source token.</summary>
    public const string RemoteDomainVariable = "QREXEC_REMOTE_DOMAIN";
    /// <summary>The argument; set only when the descriptor contained '+'.</summary>
    public const string ServiceArgumentVariable = "QREXEC_SERVICE_ARGUMENT";
    /// <summary>The type token, or empty when the call had only two tokens.</summary>
    public const string RequestedTargetTypeVariable = "QREXEC_REQUESTED_TARGET_TYPE";
    /// <summary>The target token when the type is <c>name</c>.</summary>
    public const string RequestedTargetVariable = "QREXEC_REQUESTED_TARGET";
    /// <summary>The target token without its '@' when the type is <c>keyword</c>.</summary>
    public const string RequestedTargetKeywordVariable = "QREXEC_REQUESTED_TARGET_KEYWORD";

    /// <summary>Target type whose target is passed in <see cref="RequestedTargetVariable"/>.</summary>
    public const string NameTargetType = "name";
    /// <summary>Target type whose target is passed in <see cref="RequestedTargetKeywordVariable"/>.</summary>
    public const string KeywordTargetType = "keyword";

    /// <summary>This process's environment as name/value pairs: what a service inherits before <see cref="Build"/> filters it.</summary>
    public static List<KeyValuePair<string, string>> Current()
    {
        List<KeyValuePair<string, string>> list = [];
        foreach (System.Collections.DictionaryEntry e in Environment.GetEnvironmentVariables())
        {
            list.Add(new KeyValuePair<string, string>((string)e.Key, (string?)e.Value ?? string.Empty));
        }
        return list;
    }

    /// <summary>
    /// The environment of the service as <c>KEY=VALUE</c> strings: <paramref name="inherited"/> without
    /// every <c>QREXEC*</c> variable except <c>QREXEC_SERVICE_PATH</c> and <c>QREXEC_AGENT_PID</c>, plus
    /// the call's variables. For a plain (non-RPC) command only the filtering and the agent pid apply.
    /// Inherited entries with an empty name or a name containing '=' are dropped (they cannot be passed).
    /// </summary>
    /// <param name="inherited">The environment to start from, usually the agent's own.</param>
    /// <param name="command">The parsed call.</param>
    /// <param name="agentPid">Pid of the per-call agent process for <c>QREXEC_AGENT_PID</c>; null to keep the inherited value, if any.</param>
    public static string[] Build(IEnumerable<KeyValuePair<string, string>> inherited, ServiceCommand command, int? agentPid)
    {
        var environment = new List<string>();
        foreach (KeyValuePair<string, string> variable in inherited)
        {
            string name = variable.Key;
            if (name.Length == 0 || name.Contains('=', StringComparison.Ordinal))
            {
                continue;
            }
            if (name.StartsWith(ReservedPrefix, StringComparison.Ordinal)
                && name != ServicePathVariable
                && !(name == AgentPidVariable && agentPid is null))
            {
                continue;
            }
            environment.Add(name + "=" + variable.Value);
        }

        if (command.IsRpc)
        {
            environment.Add(ServiceFullNameVariable + "=" + command.Descriptor);
            environment.Add(RemoteDomainVariable + "=" + command.Source);
            if (command.Argument is not null)
            {
                environment.Add(ServiceArgumentVariable + "=" + command.Argument);
            }
            string targetType = command.TargetType ?? string.Empty;
            environment.Add(RequestedTargetTypeVariable + "=" + targetType);
            if (command.Target is not null)
            {
                if (targetType == NameTargetType)
                {
                    environment.Add(RequestedTargetVariable + "=" + command.Target);
                }
                else if (targetType == KeywordTargetType)
                {
                    string keyword = command.Target.StartsWith('@') ? command.Target[1..] : command.Target;
                    environment.Add(RequestedTargetKeywordVariable + "=" + keyword);
                }
            }
        }

        if (agentPid is int pid)
        {
            environment.Add(AgentPidVariable + "=" + pid.ToString(CultureInfo.InvariantCulture));
        }
        return environment.ToArray();
    }

    /// <summary>
    /// The argument vector of an executable service: the full path of the service file, then the
    /// argument when it is non-empty; nothing else.
    /// </summary>
    public static string[] BuildArgv(string path, ServiceCommand command) =>
        string.IsNullOrEmpty(command.Argument) ? [path] : [path, command.Argument];
}
