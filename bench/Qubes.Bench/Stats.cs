using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;

namespace Qubes.Bench;

/// <summary>Min/median/max of a set of rounds.</summary>
internal readonly record struct Stats(double Min, double Median, double Max)
{
    public static Stats Of(IReadOnlyCollection<double> values)
    {
        double[] sorted = values.Order().ToArray();
        if (sorted.Length == 0)
        {
            throw new InvalidOperationException("no rounds measured");
        }
        int n = sorted.Length;
        double median = n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
        return new Stats(sorted[0], median, sorted[^1]);
    }

    public string Format(string unit, string format = "F3")
        => string.Format(CultureInfo.InvariantCulture, "min {0} / median {1} / max {2} {3}",
            Min.ToString(format, CultureInfo.InvariantCulture),
            Median.ToString(format, CultureInfo.InvariantCulture),
            Max.ToString(format, CultureInfo.InvariantCulture), unit);
}
