// SPDX-License-Identifier: MIT
using VRescue.Recovery.Sr;
using VRescue.Storage;

namespace VRescue.Recovery.Probe;

/// <summary>
/// `vrescue probe`: reads every layer it can from the sources (disk -> partition table -> PV -> VG -> LV -> VDI) and
/// says what is there and what is broken. The work is <see cref="SrAssembler"/>'s, shared with export and recover.
/// </summary>
public static class SrProber
{
    public static ProbeReport Probe(IReadOnlyList<IBlockSource> sources) => SrAssembler.Assemble(sources).Report;
}
