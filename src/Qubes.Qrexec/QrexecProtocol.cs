namespace Qubes.Qrexec;

/// <summary>Message types of the qrexec wire protocol (every link uses the same 8-byte header).</summary>
public enum MessageType : uint
{
    DataStdin = 0x190,
    DataStdout = 0x191,
    DataStderr = 0x192,
    DataExitCode = 0x193,
    ExecCmdline = 0x200,
    JustExec = 0x201,
    ServiceConnect = 0x202,
    ServiceRefused = 0x203,
    TriggerService = 0x210,
    ConnectionTerminated = 0x211,
    TriggerService3 = 0x212,
    TriggerService4 = 0x213,
    Hello = 0x300,
}

/// <summary>Constants and limits of the qrexec protocol, with the values of the spec.</summary>
public static class QrexecProtocol
{
    /// <summary>Version this implementation speaks on vchans (control and data).</summary>
    public const uint AgentVersion = 4;
    /// <summary>Version spoken on the daemon's Unix socket.</summary>
    public const uint ClientVersion = 3;
    public const uint MinAgentVersion = 2;
    public const uint MinClientVersion = 3;
    public const uint MinDataVersion = 2;

    public const int HeaderSize = 8;
    public const int ExecParamsSize = 8;
    public const int IdentSize = 32;
    public const int MaxFds = 256;
    public const int MaxDataChunkV2 = 4096;
    public const int MaxDataChunk = 65536;
    public const int MaxServiceNameLength = 65000;
    public const int MaxCommandLength = 65535;
    public const int ControlPort = 512;
    public const int FirstDataPort = 513;
    /// <summary>One past the last data port (the valid range is [513, 769)).</summary>
    public const int DataPortEnd = FirstDataPort + MaxFds;
    public const int ControlRingSize = 4096;
    public const int DataRingSize = 65536;

    /// <summary>
    /// Ring size, each way, of the data channel the agent serves for a descriptor-passing
    /// qrexec-client-vm (our fast path; the full client takes 65536 or <c>--buffer-size</c> as
    /// upstream). A stream through 64 KiB rings makes the two agents take turns on every few
    /// chunks; 256 KiB lets one end fill while the other drains. The client sees the orders the
    /// server chose, so any vchan peer accepts it.
    /// </summary>
    public const int FastPathDataRingSize = 1048576;

    /// <summary>
    /// Trigger socket, our extension: a TRIGGER_SERVICE4 request that comes with the caller's stdin,
    /// stdout and stderr attached (SCM_RIGHTS) hands the call over. The agent runs the caller's end
    /// itself and answers with 8 bytes, this value where upstream's exec parameters have the domain,
    /// then the call's exit status. An upstream agent reads the request without the descriptors
    /// (the kernel drops them) and answers with exec parameters as usual.
    /// </summary>
    public const uint HandedOverReply = 0xffffffff;

    public const int TriggerV2Size = 128;
    public const int TriggerV3Fixed = 96;
    public const int TriggerV4Fixed = 160;
    public const int DomainFieldSize = 64;
    public const int ServiceFieldSizeV2 = 64;
    public const int TargetFieldSizeV2 = 32;

    public const int ExitProblem = 125;
    public const int ExitRequestRefused = 126;
    public const int ExitServiceNotFound = 127;

    public const string RpcKeyword = "QUBESRPC";
    public const string NoGuiPrefix = "nogui:";
    public const string DefaultServicePath = "/run/qubes-rpc:/usr/local/etc/qubes-rpc:/etc/qubes-rpc";
    public const string DefaultConfigPath = "/run/qubes/rpc-config:/usr/local/etc/qubes/rpc-config:/etc/qubes/rpc-config";
    public const string DefaultPolicyProgram = "/usr/bin/qrexec-policy-exec";
    public const string DefaultPolicySocket = "/run/qubes/policy.sock";
    public const string DefaultQubesdSocket = "/var/run/qubesd.sock";
    public const string DefaultSocketDirectory = "/var/run/qubes";
    public const string DefaultAgentSocket = "/var/run/qubes/qrexec-agent";
    /// <summary>A policy answer must be shorter than this (a full 4096-byte read is an error).</summary>
    public const int PolicyResponseLimit = 4095;
    /// <summary>Longest full path of a service or config file.</summary>
    public const int MaxServicePath = 1023;
    /// <summary>Longest service name (NAME_MAX).</summary>
    public const int MaxServiceNameComponent = 255;
}
