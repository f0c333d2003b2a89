using System;
using System.Collections.Generic;
using System.Globalization;

namespace Qubes.Core;

/// <summary>A qube label (spec core-stack §11): identity is the name.</summary>
public sealed record Label(int Index, string Name, string Color)
{
    /// <summary>The eight labels of a fresh store.</summary>
    public static IReadOnlyList<Label> Defaults { get; } =
    [
        new(1, "red", "0xcc0000"), new(2, "orange", "0xf57900"), new(3, "yellow", "0xedd400"), new(4, "green", "0x73d216"),
        new(5, "gray", "0x555555"), new(6, "blue", "0x3465a4"), new(7, "purple", "0x75507b"), new(8, "black", "0x000000"),
    ];

    /// <summary>The id in qubes.xml.</summary>
    public string XmlId => "label-" + Index.ToString(CultureInfo.InvariantCulture);

    /// <summary>
    /// The label <paramref name="text"/> designates among <paramref name="labels"/>: a name, an index
    /// as a digit string, or <c>label-N</c>. Throws <c>QubesLabelNotFoundError</c>.
    /// </summary>
    public static Label Find(IEnumerable<Label> labels, string text)
    {
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(text);
        string digits = text.StartsWith("label-", StringComparison.Ordinal) ? text[6..] : text;
        int index = digits.Length > 0 && int.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out int n) ? n : -1;
        foreach (Label label in labels)
        {
            if (label.Name == text || label.Index == index)
            {
                return label;
            }
        }
        throw QubesException.LabelNotFound(text);
    }
}
