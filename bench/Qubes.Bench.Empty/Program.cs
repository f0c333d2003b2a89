namespace Qubes.Bench.Empty;

internal static class Program
{
    private static int Main() => 0;
}
