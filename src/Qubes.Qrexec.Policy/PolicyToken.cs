using System;

namespace Qubes.Qrexec.Policy;

/// <summary>What a policy token names (spec qrexec-policy §3).</summary>
public enum TokenKind : byte
{
    /// <summary>A qube name or <c>uuid:UUID</c>.</summary>
    Literal,
    /// <summary><c>*</c></summary>
    Any,
    /// <summary><c>@anyvm</c></summary>
    AnyVm,
    /// <summary><c>@adminvm</c></summary>
    AdminVm,
    /// <summary><c>@default</c></summary>
    Default,
    /// <summary><c>@type:TYPE</c></summary>
    Type,
    /// <summary><c>@tag:TAG</c></summary>
    Tag,
    /// <summary><c>@dispvm</c></summary>
    DispVm,
    /// <summary><c>@dispvm:NAME</c></summary>
    DispVmOf,
    /// <summary><c>@dispvm:@tag:TAG</c></summary>
    DispVmTagged,
}

/// <summary>Where a token stands; each position allows its own kinds (spec §3 table).</summary>
public enum TokenPosition : byte
{
    /// <summary>The SOURCE column.</summary>
    Source,
    /// <summary>The TARGET column.</summary>
    Target,
    /// <summary>A <c>target=</c> or <c>default_target=</c> parameter.</summary>
    Redirect,
    /// <summary>The target a request names.</summary>
    Intended,
}

/// <summary>One parsed token: its kind and its value (the name, type or tag; empty for plain keywords).</summary>
public readonly record struct PolicyToken(TokenKind Kind, string Value)
{
    /// <summary>The uuid of dom0, under which it is also known.</summary>
    public const string AdminUuid = "00000000-0000-0000-0000-000000000000";

    /// <summary>Whether <paramref name="name"/> names dom0: <c>dom0</c>, <c>@adminvm</c> or <c>uuid:</c> of dom0.</summary>
    public static bool IsDom0Name(ReadOnlySpan<char> name)
        => name.SequenceEqual("dom0") || name.SequenceEqual("@adminvm")
        || (name.StartsWith("uuid:") && name[5..].SequenceEqual(AdminUuid));

    /// <summary>Whether this token names dom0.</summary>
    public bool IsDom0 => Kind == TokenKind.AdminVm || (Kind == TokenKind.Literal && IsDom0Name(Value));

    /// <summary>
    /// Parses <paramref name="text"/> as a token allowed at <paramref name="position"/>. False with
    /// the reason for an empty token, an unknown keyword, a keyword with an empty value or one not
    /// allowed there.
    /// </summary>
    public static bool TryParse(string text, TokenPosition position, out PolicyToken token, out string? error)
    {
        ArgumentNullException.ThrowIfNull(text);
        token = default;
        error = null;
        if (text.Length == 0)
        {
            error = "empty token";
            return false;
        }
        TokenKind kind;
        string value = string.Empty;
        if (text == "*")
        {
            kind = TokenKind.Any;
        }
        else if (text[0] != '@')
        {
            kind = TokenKind.Literal;
            value = text;
        }
        else if (text == "@anyvm")
        {
            kind = TokenKind.AnyVm;
        }
        else if (text == "@adminvm")
        {
            kind = TokenKind.AdminVm;
        }
        else if (text == "@default")
        {
            kind = TokenKind.Default;
        }
        else if (text == "@dispvm")
        {
            kind = TokenKind.DispVm;
        }
        else if (TryPrefix(text, "@type:", out value))
        {
            kind = TokenKind.Type;
        }
        else if (TryPrefix(text, "@tag:", out value))
        {
            kind = TokenKind.Tag;
        }
        else if (TryPrefix(text, "@dispvm:@tag:", out value))
        {
            kind = TokenKind.DispVmTagged;
        }
        else if (TryPrefix(text, "@dispvm:", out value))
        {
            kind = TokenKind.DispVmOf;
        }
        else
        {
            error = $"invalid token '{text}'";
            return false;
        }
        if (value.Length == 0 && kind is TokenKind.Type or TokenKind.Tag or TokenKind.DispVmOf or TokenKind.DispVmTagged)
        {
            error = $"empty value in token '{text}'";
            return false;
        }
        if (value.StartsWith('@'))
        {
            // A value is never a keyword: @tag:@x, @type:@x, @dispvm:@x and @dispvm:@tag:@x name nothing.
            error = $"invalid token '{text}'";
            return false;
        }
        if (!Allowed(kind, position))
        {
            error = $"token '{text}' is not allowed in {Describe(position)}";
            return false;
        }
        token = new PolicyToken(kind, value);
        return true;
    }

    /// <summary>Whether <paramref name="kind"/> may stand at <paramref name="position"/>.</summary>
    public static bool Allowed(TokenKind kind, TokenPosition position) => position switch
    {
        TokenPosition.Source => kind is not (TokenKind.Default or TokenKind.DispVm),
        TokenPosition.Target => true,
        _ => kind is TokenKind.Literal or TokenKind.AdminVm or TokenKind.DispVm or TokenKind.DispVmOf
            || (kind == TokenKind.Default && position == TokenPosition.Intended),
    };

    /// <summary>The token as written in a policy file.</summary>
    public override string ToString() => Kind switch
    {
        TokenKind.Literal => Value,
        TokenKind.Any => "*",
        TokenKind.AnyVm => "@anyvm",
        TokenKind.AdminVm => "@adminvm",
        TokenKind.Default => "@default",
        TokenKind.Type => "@type:" + Value,
        TokenKind.Tag => "@tag:" + Value,
        TokenKind.DispVm => "@dispvm",
        TokenKind.DispVmOf => "@dispvm:" + Value,
        _ => "@dispvm:@tag:" + Value,
    };

    private static bool TryPrefix(string text, string prefix, out string value)
    {
        if (text.StartsWith(prefix, StringComparison.Ordinal))
        {
            value = text[prefix.Length..];
            return true;
        }
        value = string.Empty;
        return false;
    }

    private static string Describe(TokenPosition position) => position switch
    {
        TokenPosition.Source => "the source column",
        TokenPosition.Target => "the target column",
        TokenPosition.Redirect => "a target parameter",
        _ => "a requested target",
    };
}
