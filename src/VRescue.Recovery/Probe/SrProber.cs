// SPDX-License-Identifier: MIT
using VRescue.Storage;

namespace VRescue.Recovery.Probe;

/// <summary>Reads every layer it can from the sources and says what is there and what is broken.</summary>
public static class SrProber
{
    public static ProbeReport Probe(IReadOnlyList<IBlockSource> sources) =>
        throw new NotImplementedException("probe lands with the format readers");
}
