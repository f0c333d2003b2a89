using System;
using System.Collections.Generic;
using System.Text;

namespace Qubes.Qrexec.Services;

/// <summary>
/// The search of spec §9.2 shared by service lookup and per-service configuration: every directory of a
/// colon-separated list (empty components skipped) is tried for the full name <c>svc+arg</c>, and only
/// when no directory has it is the whole list tried again for <c>svc</c>.
/// </summary>
internal static class FileSearch
{
    /// <summary>The non-empty components of a colon-separated path list, in order.</summary>
    internal static List<string> SplitPathList(string pathList)
    {
        var directories = new List<string>();
        foreach (string component in pathList.Split(':'))
        {
            if (component.Length != 0)
            {
                directories.Add(component);
            }
        }
        return directories;
    }

    /// <summary>
    /// Runs the search. <paramref name="probe"/> returns null for an absent entry (the search goes on)
    /// or a result that ends it; <paramref name="fail"/> builds the result for a candidate that cannot
    /// be looked at (a path over the length limit, a name that cannot be a file name).
    /// Returns null when neither name exists anywhere.
    /// </summary>
    internal static TResult? Search<TResult>(
        string pathList,
        string lookupName,
        string serviceName,
        Func<string, TResult?> probe,
        Func<string, TResult> fail)
        where TResult : class
    {
        if (lookupName.Length == 0 || serviceName.Length == 0)
        {
            return fail("empty service name");
        }
        if (lookupName.Contains('\0') || serviceName.Contains('\0') || pathList.Contains('\0'))
        {
            return fail("NUL byte in service name or search path");
        }

        List<string> directories = SplitPathList(pathList);
        string[] names = string.Equals(lookupName, serviceName, StringComparison.Ordinal)
            ? [lookupName]
            : [lookupName, serviceName];
        foreach (string name in names)
        {
            foreach (string directory in directories)
            {
                string candidate = directory + "/" + name;
                int length = Encoding.UTF8.GetByteCount(candidate);
                if (length > QrexecProtocol.MaxServicePath)
                {
                    return fail($"path of {length} bytes is longer than {QrexecProtocol.MaxServicePath}: {candidate}");
                }
                TResult? result = probe(candidate);
                if (result is not null)
                {
                    return result;
                }
            }
        }
        return null;
    }
}
