/*
 * unicode-safe-gen: writes the table of code points that are "safe for display" in file names
 * received by qubes.Filecopy (spec/filecopy.md §6.3), from the Unicode data of the ICU it is
 * linked with.
 *
 * Build and run (Debian: apt-get install gcc pkg-config libicu-dev), from the repository root:
 *
 *   gcc -std=c11 -Wall -Wextra -Werror -O2 native/unicode-safe-gen.c -o /tmp/unicode-safe-gen \
 *       $(pkg-config --cflags --libs icu-uc)
 *   /tmp/unicode-safe-gen > src/Qubes.FileCopy/SafeCodePoints.Table.cs
 *
 * The output, src/Qubes.FileCopy/SafeCodePoints.Table.cs, is a C# source file holding the
 * sorted, merged, inclusive ranges of safe code points above U+007F (ASCII is decided in
 * SafeCodePoints.cs: 0x20-0x7E safe, the rest not). Regenerating with another ICU changes the
 * table only where the Unicode data changed; the header of the output names the versions used.
 *
 *   /tmp/unicode-safe-gen --explain CODEPOINT...
 *
 * prints, for each code point (hexadecimal, with or without U+ or 0x), its verdict and the
 * properties it is judged on: "U+00E9 safe gc=Ll bc=L sc=Latn usage=recommended age=1.1 NAME"
 * or "U+05D0 unsafe (bidi class R) gc=Lo bc=R ...". tests/upstream/unicode-table-compare.sh uses
 * it to explain where the table differs from upstream's.
 *
 * The criteria, in order (the first that fails makes the code point unsafe):
 *   1. a Unicode scalar value that is not a noncharacter (no surrogates, nothing above
 *      U+10FFFF, not U+FDD0-U+FDEF nor U+xxFFFE/U+xxFFFF), and not below U+0020;
 *   2. ASCII U+0020-U+007E is safe, U+007F (DEL) is not;
 *   3. general category: letters (L*), numbers (N*), punctuation (P*), math symbols (Sm) and
 *      currency symbols (Sc); marks, separators, controls, format, private use, surrogates,
 *      modifier and other symbols (emoji) and unassigned code points are unsafe;
 *   4. bidirectional class: L, EN, ES, ET, CS, WS or ON (no right-to-left, no explicit
 *      embedding or isolate controls, no boundary neutrals, no non-spacing marks);
 *   5. the identifier usage of the Script property's value (UAX #31, as ICU reports it):
 *      recommended, or unknown (unclassified); excluded, limited-use and aspirational scripts
 *      are unsafe;
 *   6. the script itself: Common, Inherited, Latin, Greek, Cyrillic, Braille, the Han family
 *      (Hani, Hans, Hant, Hanb), Hangul and Jamo, Bopomofo, Hiragana, Katakana and their
 *      Japanese and Korean unions. Every other script is unsafe: right-to-left ones, historic
 *      ones, and those that need complex shaping to render (Indic, Southeast Asian, ...).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unicode/uchar.h>
#include <unicode/uscript.h>
#include <unicode/utf.h>
#include <unicode/uversion.h>

/* criterion 3 */
static const uint32_t allowed_categories =
    U_GC_L_MASK | U_GC_N_MASK | U_GC_P_MASK | U_GC_SM_MASK | U_GC_SC_MASK;

/* criterion 4 */
static const uint32_t allowed_bidi_classes =
    U_MASK(U_LEFT_TO_RIGHT) | U_MASK(U_EUROPEAN_NUMBER) | U_MASK(U_EUROPEAN_NUMBER_SEPARATOR) |
    U_MASK(U_EUROPEAN_NUMBER_TERMINATOR) | U_MASK(U_COMMON_NUMBER_SEPARATOR) |
    U_MASK(U_WHITE_SPACE_NEUTRAL) | U_MASK(U_OTHER_NEUTRAL);

/* criterion 6 */
static const UScriptCode allowed_scripts[] = {
    USCRIPT_COMMON, USCRIPT_INHERITED,
    USCRIPT_LATIN, USCRIPT_GREEK, USCRIPT_CYRILLIC, USCRIPT_BRAILLE,
    USCRIPT_HAN, USCRIPT_SIMPLIFIED_HAN, USCRIPT_TRADITIONAL_HAN, USCRIPT_HAN_WITH_BOPOMOFO,
    USCRIPT_HANGUL, USCRIPT_JAMO, USCRIPT_KOREAN,
    USCRIPT_BOPOMOFO,
    USCRIPT_HIRAGANA, USCRIPT_KATAKANA, USCRIPT_KATAKANA_OR_HIRAGANA, USCRIPT_JAPANESE,
};

static const char *usage_name(UScriptUsage usage)
{
    switch (usage) {
    case USCRIPT_USAGE_NOT_ENCODED: return "not-encoded";
    case USCRIPT_USAGE_UNKNOWN: return "unknown";
    case USCRIPT_USAGE_EXCLUDED: return "excluded";
    case USCRIPT_USAGE_LIMITED_USE: return "limited-use";
    case USCRIPT_USAGE_ASPIRATIONAL: return "aspirational";
    case USCRIPT_USAGE_RECOMMENDED: return "recommended";
    default: return "?";
    }
}

static void die(const char *what)
{
    fprintf(stderr, "unicode-safe-gen: %s\n", what);
    exit(1);
}

static UScriptCode script_of(UChar32 c)
{
    UErrorCode status = U_ZERO_ERROR;
    UScriptCode script = uscript_getScript(c, &status);
    if (U_FAILURE(status))
        die("uscript_getScript failed");
    return script;
}

/*
 * NULL when c is safe, else why not (into buf, or a constant). Every criterion of the comment at
 * the top, in its order.
 */
static const char *unsafe_reason(UChar32 c, char *buf, size_t size)
{
    if (!U_IS_UNICODE_CHAR(c))
        return "not a Unicode scalar value, or a noncharacter";
    if (c < 0x20)
        return "C0 control";
    if (c < 0x7F)
        return NULL;
    if (c == 0x7F)
        return "DEL";

    int8_t category = u_charType(c);
    if ((U_MASK(category) & allowed_categories) == 0) {
        snprintf(buf, size, "general category %s",
                 u_getPropertyValueName(UCHAR_GENERAL_CATEGORY, category, U_SHORT_PROPERTY_NAME));
        return buf;
    }

    UCharDirection direction = u_charDirection(c);
    if ((U_MASK(direction) & allowed_bidi_classes) == 0) {
        snprintf(buf, size, "bidi class %s",
                 u_getPropertyValueName(UCHAR_BIDI_CLASS, direction, U_SHORT_PROPERTY_NAME));
        return buf;
    }

    UScriptCode script = script_of(c);
    UScriptUsage usage = uscript_getUsage(script);
    if (usage != USCRIPT_USAGE_RECOMMENDED && usage != USCRIPT_USAGE_UNKNOWN) {
        snprintf(buf, size, "script %s is %s", uscript_getShortName(script), usage_name(usage));
        return buf;
    }

    for (size_t i = 0; i < sizeof allowed_scripts / sizeof allowed_scripts[0]; i++)
        if (allowed_scripts[i] == script)
            return NULL;
    snprintf(buf, size, "script %s not allowed", uscript_getShortName(script));
    return buf;
}

static bool is_safe(UChar32 c)
{
    char reason[128];
    return unsafe_reason(c, reason, sizeof reason) == NULL;
}

static void explain(const char *arg)
{
    const char *digits = arg;
    if (strncmp(digits, "U+", 2) == 0 || strncmp(digits, "u+", 2) == 0 ||
        strncmp(digits, "0x", 2) == 0 || strncmp(digits, "0X", 2) == 0)
        digits += 2;
    char *end;
    unsigned long value = strtoul(digits, &end, 16);
    if (*digits == '\0' || *end != '\0' || value > 0x7FFFFFFFUL) {
        fprintf(stderr, "unicode-safe-gen: not a hexadecimal code point: %s\n", arg);
        exit(2);
    }
    UChar32 c = (UChar32)value;

    char buf[128];
    const char *reason = unsafe_reason(c, buf, sizeof buf);
    printf("U+%04lX %s", value, reason ? "unsafe" : "safe");
    if (reason)
        printf(" (%s)", reason);
    if (c > 0x10FFFF) {
        putchar('\n');
        return;
    }

    UVersionInfo age;
    char age_text[U_MAX_VERSION_STRING_LENGTH];
    u_charAge(c, age);
    u_versionToString(age, age_text);
    char name[256] = "";
    UErrorCode status = U_ZERO_ERROR;
    u_charName(c, U_UNICODE_CHAR_NAME, name, sizeof name, &status);
    if (U_FAILURE(status))
        name[0] = '\0';
    UScriptCode script = script_of(c);
    printf(" gc=%s bc=%s sc=%s usage=%s age=%s %s\n",
           u_getPropertyValueName(UCHAR_GENERAL_CATEGORY, u_charType(c), U_SHORT_PROPERTY_NAME),
           u_getPropertyValueName(UCHAR_BIDI_CLASS, u_charDirection(c), U_SHORT_PROPERTY_NAME),
           uscript_getShortName(script), usage_name(uscript_getUsage(script)),
           /* ICU gives age 0.0 to unassigned code points */
           age[0] == 0 ? "unassigned" : age_text, name);
}

static void write_table(void)
{
    UVersionInfo icu, unicode;
    char icu_text[U_MAX_VERSION_STRING_LENGTH], unicode_text[U_MAX_VERSION_STRING_LENGTH];
    u_getVersion(icu);
    u_getUnicodeVersion(unicode);
    u_versionToString(icu, icu_text);
    u_versionToString(unicode, unicode_text);

    /* the C# side relies on these; fail rather than write a table that contradicts it */
    for (UChar32 c = 0; c < 0x80; c++)
        if (is_safe(c) != (c >= 0x20 && c < 0x7F))
            die("ASCII verdicts differ from SafeCodePoints.IsSafe's fast path");
    if (is_safe(0x10FFFF))
        die("U+10FFFF judged safe");

    printf("// <auto-generated/>\n"
           "// Generated by native/unicode-safe-gen.c from ICU version %s / Unicode version %s.\n"
           "// Do not edit: regenerate with the command at the top of native/unicode-safe-gen.c.\n"
           "\n"
           "using System;\n"
           "\n"
           "namespace Qubes.FileCopy;\n"
           "\n"
           "internal static partial class SafeCodePoints\n"
           "{\n"
           "    /// <summary>ICU version the table was generated from.</summary>\n"
           "    internal const string IcuVersion = \"%s\";\n"
           "\n"
           "    /// <summary>Unicode version of the data the table was generated from.</summary>\n"
           "    internal const string UnicodeVersion = \"%s\";\n"
           "\n"
           "    /// <summary>\n"
           "    /// The code points above U+007F that are safe for display (spec §6.3): pairs of\n"
           "    /// inclusive first and last code points, sorted, none overlapping or touching.\n"
           "    /// </summary>\n"
           "    private static ReadOnlySpan<uint> RangeTable =>\n"
           "    [\n",
           icu_text, unicode_text, icu_text, unicode_text);

    unsigned ranges = 0;
    UChar32 first = -1;
    for (UChar32 c = 0x80; c <= 0x110000; c++) {
        bool safe = c <= 0x10FFFF && is_safe(c);
        if (safe && first < 0) {
            first = c;
        } else if (!safe && first >= 0) {
            printf("        0x%06X, 0x%06X,\n", (unsigned)first, (unsigned)(c - 1));
            ranges++;
            first = -1;
        }
    }

    printf("    ];\n"
           "\n"
           "    /// <summary>Number of ranges in the table.</summary>\n"
           "    internal const int RangeCount = %u;\n"
           "}\n",
           ranges);
    if (fflush(stdout) != 0 || ferror(stdout))
        die("write error");
}

int main(int argc, char **argv)
{
    if (argc == 1) {
        write_table();
        return 0;
    }
    if (strcmp(argv[1], "--explain") == 0) {
        for (int i = 2; i < argc; i++)
            explain(argv[i]);
        if (fflush(stdout) != 0 || ferror(stdout))
            die("write error");
        return 0;
    }
    fprintf(stderr, "usage: unicode-safe-gen > SafeCodePoints.Table.cs\n"
                    "       unicode-safe-gen --explain CODEPOINT...\n");
    return 2;
}
