using System;
using System.Buffers;
using System.Collections.Frozen;
using System.Text;

namespace Qubes.AppMenus;

/// <summary>
/// The desktop-entry keys dom0 takes from a qube's menu list and what each value may contain
/// (spec rpc-services §2.3, §2.4); every other key is dropped.
/// </summary>
public static class MenuFields
{
    private const string Letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

    private static readonly SearchValues<char> s_text = SearchValues.Create(Letters + "/.,:&()_ +-");
    private static readonly SearchValues<char> s_class = SearchValues.Create(Letters + "/_.-");
    private static readonly SearchValues<char> s_categories = SearchValues.Create(Letters + "/.;:'() -");
    private static readonly SearchValues<char> s_exec = SearchValues.Create(Letters + "()_&>/{}:.= -");

    /// <summary>The freedesktop menu-spec 1.1 main and additional categories; the reserved ones (Screensaver, TrayIcon, Applet, Shell) are not among them.</summary>
    public static FrozenSet<string> Categories { get; } = FrozenSet.Create(StringComparer.Ordinal,
    [
        "AudioVideo", "Audio", "Video", "Development", "Education", "Game", "Graphics", "Network", "Office", "Science",
        "Settings", "System", "Utility",
        "Building", "Debugger", "IDE", "GUIDesigner", "Profiling", "RevisionControl", "Translation", "Calendar",
        "ContactManagement", "Database", "Dictionary", "Chart", "Email", "Finance", "FlowChart", "PDA",
        "ProjectManagement", "Presentation", "Spreadsheet", "WordProcessor", "2DGraphics", "VectorGraphics",
        "RasterGraphics", "3DGraphics", "Scanning", "OCR", "Photography", "Publishing", "Viewer", "TextTools",
        "DesktopSettings", "HardwareSettings", "Printing", "PackageManager", "Dialup", "InstantMessaging", "Chat",
        "IRCClient", "Feed", "FileTransfer", "HamRadio", "News", "P2P", "RemoteAccess", "Telephony", "TelephonyTools",
        "VideoConference", "WebBrowser", "WebDevelopment", "Midi", "Mixer", "Sequencer", "Tuner", "TV",
        "AudioVideoEditing", "Player", "Recorder", "DiscBurning", "ActionGame", "AdventureGame", "ArcadeGame",
        "BoardGame", "BlocksGame", "CardGame", "KidsGame", "LogicGame", "RolePlaying", "Shooter", "Simulation",
        "SportsGame", "StrategyGame", "Art", "Construction", "Music", "Languages", "ArtificialIntelligence",
        "Astronomy", "Biology", "Chemistry", "ComputerScience", "DataVisualization", "Economy", "Electricity",
        "Geography", "Geology", "Geoscience", "History", "Humanities", "ImageProcessing", "Literature", "Maps", "Math",
        "NumericalAnalysis", "MedicalSoftware", "Physics", "Robotics", "Spirituality", "Sports", "ParallelComputing",
        "Amusement", "Archiving", "Compression", "Electronics", "Emulator", "Engineering", "FileTools", "FileManager",
        "TerminalEmulator", "Filesystem", "Monitor", "Security", "Accessibility", "Calculator", "Clock", "TextEditor",
        "Documentation", "Adult", "Core", "KDE", "GNOME", "XFCE", "GTK", "Qt", "Motif", "Java", "ConsoleOnly",
    ]);

    /// <summary>Whether <paramref name="key"/> is one dom0 takes at all.</summary>
    public static bool IsAccepted(string key) => key is "Name" or "GenericName" or "Comment" or "StartupWMClass" or "Categories" or "Exec" or "Icon";

    /// <summary>Whether the whole of <paramref name="value"/> is allowed for the accepted <paramref name="key"/>.</summary>
    public static bool IsValid(string key, ReadOnlySpan<char> value) => !value.ContainsAnyExcept(key switch
    {
        "Name" or "GenericName" or "Comment" => s_text,
        "StartupWMClass" or "Icon" => s_class,
        "Categories" => s_categories,
        "Exec" => s_exec,
        _ => throw new ArgumentOutOfRangeException(nameof(key), key, "not a key dom0 takes"),
    });

    /// <summary>
    /// The listed categories of an already valid <c>Categories</c> value: split on <c>;</c>, empty parts
    /// dropped, each stripped, unknown ones dropped, joined as <c>A;B;</c> (<c>;</c> when none is left).
    /// </summary>
    public static string FilterCategories(string value)
    {
        StringBuilder kept = new();
        foreach (string part in value.Split(';'))
        {
            if (part.Length == 0)
            {
                continue;
            }
            string name = MenuText.Strip(part);
            if (Categories.Contains(name))
            {
                kept.Append(name).Append(';');
            }
        }
        return kept.Length == 0 ? ";" : kept.ToString();
    }
}
