using System;

namespace Qubes.Core;

/// <summary>
/// An error a caller of the core can be told about, with the upstream exception type name that the
/// Admin API puts in its error reply (spec core-stack §9.4), e.g. <c>QubesValueError</c>.
/// </summary>
public class QubesException(string typeName, string message) : Exception(message)
{
    /// <summary>The upstream exception class name.</summary>
    public string TypeName { get; } = typeName;

    /// <summary><c>QubesValueError</c>: a value that is not allowed.</summary>
    public static QubesException Value(string message) => new("QubesValueError", message);

    /// <summary><c>QubesPropertyValueError</c>: a property value that is not allowed.</summary>
    public static QubesException PropertyValue(string message) => new("QubesPropertyValueError", message);

    /// <summary><c>QubesVMNotFoundError</c>: no such qube.</summary>
    public static QubesException NotFound(string name) => new("QubesVMNotFoundError", $"No such domain: '{name}'");

    /// <summary><c>QubesLabelNotFoundError</c>: no such label.</summary>
    public static QubesException LabelNotFound(string label) => new("QubesLabelNotFoundError", $"Label does not exist: '{label}'");
}
