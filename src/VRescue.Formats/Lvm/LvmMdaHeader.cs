// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using VRescue.Formats.Common;

namespace VRescue.Formats.Lvm;

/// <summary>Byte map of mda_header and raw_locn (lvm2 lib/format_text/layout.h).</summary>
public static class LvmMdaHeaderLayout
{
    /// <summary>MDA_HEADER_SIZE: the header occupies the first 512 bytes of the area; the ring follows.</summary>
    public const int HeaderBytes = 512;

    public const int ChecksumOffset = 0;

    /// <summary>checksum_xl covers bytes 4..511.</summary>
    public const int ChecksumStart = 4;

    public const int MagicOffset = 4, MagicLength = 16;
    public const int VersionOffset = 20;
    public const int StartOffset = 24;
    public const int SizeOffset = 32;

    /// <summary>raw_locn[0] (committed); raw_locn[1] (precommitted) follows, then a zero terminator.</summary>
    public const int RawLocationsOffset = 40;

    /// <summary>FMTT_VERSION.</summary>
    public const uint Version = 1;

    /// <summary>FMTT_MAGIC: leading space, no NUL.</summary>
    public static ReadOnlySpan<byte> Magic => " LVM2 x[5A%r0N*>"u8;

    // raw_locn: u64 offset (from mda start), u64 size (incl. NUL), u32 checksum, u32 flags.
    public const int RawLocationLength = 24;
    public const int RawOffsetOffset = 0, RawSizeOffset = 8, RawChecksumOffset = 16, RawFlagsOffset = 20;

    /// <summary>RAW_LOCN_IGNORED.</summary>
    public const uint RawFlagIgnored = 0x1;
}

/// <summary>A raw_locn: where one metadata text copy sits in the ring.</summary>
/// <param name="OffsetBytes">Offset from the mda start (≥ 512 when used).</param>
/// <param name="SizeBytes">Text size including the trailing NUL.</param>
/// <param name="Checksum">LVM CRC of the text.</param>
/// <param name="Flags">Bit 0: RAW_LOCN_IGNORED.</param>
public readonly record struct LvmRawLocation(ulong OffsetBytes, ulong SizeBytes, uint Checksum, uint Flags)
{
    /// <summary>An unused slot (offset 0).</summary>
    public bool IsEmpty => OffsetBytes == 0;

    /// <summary>The mda is marked as not holding metadata (pvchange --metadataignore).</summary>
    public bool IsIgnored => (Flags & LvmMdaHeaderLayout.RawFlagIgnored) != 0;

    internal static LvmRawLocation Decode(ReadOnlySpan<byte> b) => new(
        BinaryPrimitives.ReadUInt64LittleEndian(b[LvmMdaHeaderLayout.RawOffsetOffset..]),
        BinaryPrimitives.ReadUInt64LittleEndian(b[LvmMdaHeaderLayout.RawSizeOffset..]),
        BinaryPrimitives.ReadUInt32LittleEndian(b[LvmMdaHeaderLayout.RawChecksumOffset..]),
        BinaryPrimitives.ReadUInt32LittleEndian(b[LvmMdaHeaderLayout.RawFlagsOffset..]));

    internal void Encode(Span<byte> b)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(b[LvmMdaHeaderLayout.RawOffsetOffset..], OffsetBytes);
        BinaryPrimitives.WriteUInt64LittleEndian(b[LvmMdaHeaderLayout.RawSizeOffset..], SizeBytes);
        BinaryPrimitives.WriteUInt32LittleEndian(b[LvmMdaHeaderLayout.RawChecksumOffset..], Checksum);
        BinaryPrimitives.WriteUInt32LittleEndian(b[LvmMdaHeaderLayout.RawFlagsOffset..], Flags);
    }
}

/// <summary>
/// Where a text copy lies in its ring, relative to the mda start: the first part, and the part that wrapped
/// to offset 512 (length 0 when the copy does not wrap). format-text.c _vg_read_raw_area.
/// </summary>
public readonly record struct LvmTextExtent(long FirstOffsetBytes, int FirstLengthBytes, long WrapOffsetBytes, int WrapLengthBytes)
{
    /// <summary>Total text size.</summary>
    public int LengthBytes => FirstLengthBytes + WrapLengthBytes;

    /// <summary>Mda-relative offset of text byte <paramref name="index"/>.</summary>
    public long MdaOffsetOf(long index) =>
        index < FirstLengthBytes ? FirstOffsetBytes + index : WrapOffsetBytes + (index - FirstLengthBytes);
}

/// <summary>An mda_header: the first sector of a metadata area. <see cref="Decode"/> keeps invalid values.</summary>
public sealed class LvmMdaHeader
{
    /// <summary>Largest text we read from a ring, whatever the header says (bounds allocations).</summary>
    public const int MaxTextBytes = 64 * 1024 * 1024;

    private const string Format = "LVM2";
    private const string Structure = "mda_header";

    private readonly byte[] _raw;

    private LvmMdaHeader(byte[] raw, long offsetBytes)
    {
        _raw = raw;
        OffsetBytes = offsetBytes;
    }

    /// <summary>Where the header was read, from the PV start (used for finding offsets).</summary>
    public long OffsetBytes { get; }

    /// <summary>The 512 bytes as read.</summary>
    public ReadOnlySpan<byte> Raw => _raw;

    /// <summary>checksum_xl as stored.</summary>
    public uint StoredChecksum { get; private init; }

    /// <summary>CRC of bytes 4..511 as read.</summary>
    public uint ComputedChecksum { get; private init; }

    /// <summary>True when bytes 4..19 are FMTT_MAGIC.</summary>
    public bool MagicValid => _raw.AsSpan(LvmMdaHeaderLayout.MagicOffset, LvmMdaHeaderLayout.MagicLength).SequenceEqual(LvmMdaHeaderLayout.Magic);

    /// <summary>mda_header.version (1).</summary>
    public uint Version { get; private init; }

    /// <summary>mda_header.start: absolute byte offset of this header from the PV start.</summary>
    public ulong StartBytes { get; private init; }

    /// <summary>mda_header.size: whole area including the 512-byte header.</summary>
    public ulong SizeBytes { get; private init; }

    /// <summary>raw_locn[0]: the committed metadata ("slot0").</summary>
    public LvmRawLocation Committed { get; private init; }

    /// <summary>raw_locn[1]: the precommitted metadata ("slot1"), normally empty.</summary>
    public LvmRawLocation Precommitted { get; private init; }

    /// <summary>Decodes the 512-byte header read at <paramref name="offsetBytes"/> (PV-relative).</summary>
    public static LvmMdaHeader Decode(ReadOnlySpan<byte> sector, long offsetBytes = 0)
    {
        if (sector.Length < LvmMdaHeaderLayout.HeaderBytes)
        {
            throw new ArgumentException($"an mda header is {LvmMdaHeaderLayout.HeaderBytes} bytes, got {sector.Length}", nameof(sector));
        }

        var raw = sector[..LvmMdaHeaderLayout.HeaderBytes].ToArray();
        var r = LvmMdaHeaderLayout.RawLocationsOffset;
        return new LvmMdaHeader(raw, offsetBytes)
        {
            StoredChecksum = BinaryPrimitives.ReadUInt32LittleEndian(raw.AsSpan(LvmMdaHeaderLayout.ChecksumOffset)),
            ComputedChecksum = LvmCrc.Compute(raw.AsSpan(LvmMdaHeaderLayout.ChecksumStart)),
            Version = BinaryPrimitives.ReadUInt32LittleEndian(raw.AsSpan(LvmMdaHeaderLayout.VersionOffset)),
            StartBytes = BinaryPrimitives.ReadUInt64LittleEndian(raw.AsSpan(LvmMdaHeaderLayout.StartOffset)),
            SizeBytes = BinaryPrimitives.ReadUInt64LittleEndian(raw.AsSpan(LvmMdaHeaderLayout.SizeOffset)),
            Committed = LvmRawLocation.Decode(raw.AsSpan(r)),
            Precommitted = LvmRawLocation.Decode(raw.AsSpan(r + LvmMdaHeaderLayout.RawLocationLength)),
        };
    }

    /// <summary>Decode, then throw <see cref="CorruptDataException"/> for the first error finding.</summary>
    public static LvmMdaHeader Parse(ReadOnlySpan<byte> sector, long expectedStartBytes)
    {
        var h = Decode(sector, expectedStartBytes);
        CorruptDataException.ThrowIfErrors(Format, Structure, h.Validate(expectedStartBytes));
        return h;
    }

    /// <summary>A header as LVM writes it, with its checksum.</summary>
    public static LvmMdaHeader Create(ulong startBytes, ulong sizeBytes, LvmRawLocation committed, LvmRawLocation precommitted = default)
    {
        var template = new LvmMdaHeader([], (long)startBytes)
        {
            Version = LvmMdaHeaderLayout.Version,
            StartBytes = startBytes,
            SizeBytes = sizeBytes,
            Committed = committed,
            Precommitted = precommitted,
        };
        var b = new byte[LvmMdaHeaderLayout.HeaderBytes];
        template.Encode(b);
        return Decode(b, (long)startBytes);
    }

    /// <summary>Writes magic, version, start, size, both slots and a zero terminator, then the checksum.</summary>
    public void Encode(Span<byte> destination)
    {
        if (destination.Length < LvmMdaHeaderLayout.HeaderBytes)
        {
            throw new ArgumentException($"need {LvmMdaHeaderLayout.HeaderBytes} bytes", nameof(destination));
        }

        var s = destination[..LvmMdaHeaderLayout.HeaderBytes];
        s.Clear();
        LvmMdaHeaderLayout.Magic.CopyTo(s[LvmMdaHeaderLayout.MagicOffset..]);
        BinaryPrimitives.WriteUInt32LittleEndian(s[LvmMdaHeaderLayout.VersionOffset..], Version);
        BinaryPrimitives.WriteUInt64LittleEndian(s[LvmMdaHeaderLayout.StartOffset..], StartBytes);
        BinaryPrimitives.WriteUInt64LittleEndian(s[LvmMdaHeaderLayout.SizeOffset..], SizeBytes);
        Committed.Encode(s[LvmMdaHeaderLayout.RawLocationsOffset..]);
        Precommitted.Encode(s[(LvmMdaHeaderLayout.RawLocationsOffset + LvmMdaHeaderLayout.RawLocationLength)..]);
        BinaryPrimitives.WriteUInt32LittleEndian(s, LvmCrc.Compute(s[LvmMdaHeaderLayout.ChecksumStart..]));
    }

    /// <summary>
    /// The checks LVM applies (format-text.c _raw_read_mda_header, _read_metadata_location_vg) plus slot sanity.
    /// Offsets are PV-relative.
    /// </summary>
    public IReadOnlyList<Finding> Validate(long expectedStartBytes)
    {
        var f = new List<Finding>();
        var at = OffsetBytes;
        if (StoredChecksum != ComputedChecksum)
        {
            f.Add(new Finding("LVM_MDA_HEADER_CRC", Severity.Error,
                $"mda header checksum over bytes 4..511 is {Hex.U32(ComputedChecksum)}, stored {Hex.U32(StoredChecksum)}",
                at + LvmMdaHeaderLayout.ChecksumOffset, "mda_header.checksum_xl", Hex.U32(StoredChecksum), Hex.U32(ComputedChecksum)));
        }

        if (!MagicValid)
        {
            f.Add(new Finding("LVM_MDA_MAGIC", Severity.Error, "mda header magic is not \" LVM2 x[5A%r0N*>\"",
                at + LvmMdaHeaderLayout.MagicOffset, "mda_header.magic",
                Convert.ToHexStringLower(_raw, LvmMdaHeaderLayout.MagicOffset, LvmMdaHeaderLayout.MagicLength),
                Convert.ToHexStringLower(LvmMdaHeaderLayout.Magic)));
        }

        if (Version != LvmMdaHeaderLayout.Version)
        {
            f.Add(new Finding("LVM_MDA_VERSION", Severity.Error, $"mda header version {Version}, expected 1",
                at + LvmMdaHeaderLayout.VersionOffset, "mda_header.version", Version.ToString(), "1"));
        }

        if (StartBytes != (ulong)expectedStartBytes)
        {
            f.Add(new Finding("LVM_MDA_START", Severity.Error,
                $"mda header says it starts at {StartBytes}, but the label puts it at {expectedStartBytes}" +
                (StartBytes <= long.MaxValue ? $" (if the header is right, the PV starts at {expectedStartBytes - (long)StartBytes} relative to this source)" : ""),
                at + LvmMdaHeaderLayout.StartOffset, "mda_header.start", StartBytes.ToString(), expectedStartBytes.ToString()));
        }

        if (SizeBytes < LvmMdaHeaderLayout.HeaderBytes)
        {
            f.Add(new Finding("LVM_MDA_SIZE", Severity.Error, $"mda size {SizeBytes} is smaller than its own header",
                at + LvmMdaHeaderLayout.SizeOffset, "mda_header.size", SizeBytes.ToString(), ">= 512"));
        }

        CheckSlot(f, Committed, 0, "committed");
        CheckSlot(f, Precommitted, 1, "precommitted");
        if (!Precommitted.IsEmpty)
        {
            f.Add(new Finding("LVM_MDA_PRECOMMIT", Severity.Info,
                "raw_locn[1] (precommitted metadata) is not empty: a write was interrupted between precommit and commit",
                at + SlotOffset(1), "mda_header.raw_locn[1]"));
        }

        return f;
    }

    /// <summary>
    /// Where the text of <paramref name="location"/> lies in this ring, following a wrap back to offset 512.
    /// Null when the slot is empty or its values do not fit the area (see <see cref="Validate"/>).
    /// </summary>
    public LvmTextExtent? TextExtent(LvmRawLocation location)
    {
        if (location.IsEmpty || !SlotFits(location))
        {
            return null;
        }

        // In ulong: mda_header.size may be anything up to 2^64-1 (SlotFits only ties offset and size to it), and the
        // text part before the ring's end is at most the slot size, which SlotFits bounds by MaxTextBytes.
        var first = Math.Min(location.SizeBytes, SizeBytes - location.OffsetBytes);
        return new LvmTextExtent((long)location.OffsetBytes, (int)first, LvmMdaHeaderLayout.HeaderBytes, (int)(location.SizeBytes - first));
    }

    private bool SlotFits(LvmRawLocation l) =>
        SizeBytes >= LvmMdaHeaderLayout.HeaderBytes &&
        l.OffsetBytes >= LvmMdaHeaderLayout.HeaderBytes && l.OffsetBytes < SizeBytes &&
        l.SizeBytes > 0 && l.SizeBytes <= SizeBytes - LvmMdaHeaderLayout.HeaderBytes && l.SizeBytes <= MaxTextBytes;

    private void CheckSlot(List<Finding> f, LvmRawLocation l, int slot, string what)
    {
        if (l.IsEmpty || SlotFits(l))
        {
            return;
        }

        var ring = SizeBytes >= LvmMdaHeaderLayout.HeaderBytes ? SizeBytes - LvmMdaHeaderLayout.HeaderBytes : 0;
        f.Add(new Finding("LVM_MDA_RAW_LOCN", Severity.Error,
            $"raw_locn[{slot}] ({what}) offset {l.OffsetBytes} size {l.SizeBytes} does not fit a ring of {ring} bytes at 512..{SizeBytes} (text limit {MaxTextBytes})",
            OffsetBytes + SlotOffset(slot), $"mda_header.raw_locn[{slot}]", $"{l.OffsetBytes}+{l.SizeBytes}", $"512 <= offset < {SizeBytes}, size <= {ring}"));
    }

    private static int SlotOffset(int slot) => LvmMdaHeaderLayout.RawLocationsOffset + slot * LvmMdaHeaderLayout.RawLocationLength;
}
