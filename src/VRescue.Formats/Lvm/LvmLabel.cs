// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Text;
using VRescue.Formats.Common;

namespace VRescue.Formats.Lvm;

/// <summary>Byte map of the label sector (lvm2 lib/label/label.h label_header, lib/format_text/layout.h pv_header).</summary>
public static class LvmLabelLayout
{
    /// <summary>LVM sectors are always 512 bytes (SECTOR_SHIFT 9).</summary>
    public const int SectorBytes = 512;

    /// <summary>LABEL_SCAN_SECTORS: a label may sit in sectors 0..3.</summary>
    public const int ScanSectors = 4;

    /// <summary>LABEL_SCAN_SIZE in bytes.</summary>
    public const int ScanBytes = ScanSectors * SectorBytes;

    /// <summary>DEFAULT_LABELSECTOR.</summary>
    public const int DefaultSector = 1;

    public const int IdOffset = 0, IdLength = 8;
    public const int SectorXlOffset = 8;
    public const int CrcXlOffset = 16;
    public const int OffsetXlOffset = 20;
    public const int TypeOffset = 24, TypeLength = 8;

    /// <summary>Size of label_header; also the pv_header offset LVM writes.</summary>
    public const int LabelHeaderLength = 32;

    /// <summary>crc_xl covers bytes 20..511 (from offset_xl to the end of the sector).</summary>
    public const int CrcStart = OffsetXlOffset;

    // pv_header, relative to its start (label sector + offset_xl).
    public const int PvUuidOffset = 0;
    public const int PvUuidLength = 32;
    public const int DeviceSizeOffset = 32;
    public const int DiskLocationsOffset = 40;

    /// <summary>Largest offset_xl that leaves room for pv_header's fixed part (uuid, size) and one terminator.</summary>
    public const int MaxPvHeaderOffset = SectorBytes - DiskLocationsOffset - LvmDiskLocation.EncodedLength;

    /// <summary>pv_header_extension: u32 version, u32 flags, then the bootloader-area list.</summary>
    public const int ExtensionFixedLength = 8;

    /// <summary>PV_HEADER_EXTENSION_VSN written by current LVM.</summary>
    public const uint CurrentExtensionVersion = 2;

    /// <summary>PV_EXT_USED: the PV belongs to a VG.</summary>
    public const uint FlagPvExtUsed = 0x1;

    public static ReadOnlySpan<byte> LabelId => "LABELONE"u8;

    public static ReadOnlySpan<byte> LabelType => "LVM2 001"u8;
}

/// <summary>
/// An LVM2 label sector: label_header, pv_header with its data-area and metadata-area lists, and the
/// pv_header_extension. <see cref="Decode"/> keeps what is on disk, including invalid values.
/// </summary>
public sealed class LvmLabel
{
    private const string Format = "LVM2";
    private const string Structure = "label";

    private readonly byte[] _raw;

    private LvmLabel(byte[] raw, long sectorNumber)
    {
        _raw = raw;
        SectorNumber = sectorNumber;
    }

    /// <summary>The sector (0..3) the label was read from or is meant for.</summary>
    public long SectorNumber { get; }

    /// <summary>Byte offset of the label sector within the PV.</summary>
    public long OffsetBytes => SectorNumber * LvmLabelLayout.SectorBytes;

    /// <summary>The 512 bytes as decoded (checksums are computed over these, never over a re-encoding).</summary>
    public ReadOnlySpan<byte> Raw => _raw;

    /// <summary>label_header.id, normally "LABELONE".</summary>
    public string Id { get; private init; } = "";

    /// <summary>label_header.sector_xl: the sector the label claims to be in.</summary>
    public ulong SectorXl { get; private init; }

    /// <summary>label_header.crc_xl.</summary>
    public uint StoredCrc { get; private init; }

    /// <summary>CRC of bytes 20..511 as read.</summary>
    public uint ComputedCrc { get; private init; }

    /// <summary>label_header.offset_xl: pv_header offset within the sector (32).</summary>
    public uint OffsetXl { get; private init; }

    /// <summary>label_header.type, normally "LVM2 001"; zeros after <c>wipefs</c>.</summary>
    public string Type { get; private init; } = "";

    /// <summary>Where pv_header was decoded from (offset_xl, or 32 when offset_xl is out of range).</summary>
    public int PvHeaderOffset { get; private init; }

    /// <summary>pv_header.pv_uuid, 32 characters without dashes (bytes mapped one to one, Latin-1).</summary>
    public string PvUuid { get; private init; } = "";

    /// <summary><see cref="PvUuid"/> as 6-4-4-4-4-4-6, the form used in metadata text.</summary>
    public string PvUuidFormatted => LvmUuid.Format(PvUuid);

    /// <summary>pv_header.device_size in bytes (size when the header was written).</summary>
    public ulong DeviceSizeBytes { get; private init; }

    /// <summary>Data areas (LVM writes one: offset = pe_start in bytes, size 0 = to the end).</summary>
    public IReadOnlyList<LvmDiskLocation> DataAreas { get; private init; } = [];

    /// <summary>Metadata areas: offset of each mda_header and the area size including it.</summary>
    public IReadOnlyList<LvmDiskLocation> MetadataAreas { get; private init; } = [];

    /// <summary>pv_header_extension.version (0: no extension, old PV).</summary>
    public uint ExtensionVersion { get; private init; }

    /// <summary>pv_header_extension.flags (bit 0 PV_EXT_USED).</summary>
    public uint Flags { get; private init; }

    /// <summary>Bootloader areas from the extension (normally none).</summary>
    public IReadOnlyList<LvmDiskLocation> BootloaderAreas { get; private init; } = [];

    /// <summary>Name and sector-relative offset of a list that ran off the end of the sector without terminator.</summary>
    public (string Field, int Offset)? UnterminatedList { get; private init; }

    /// <summary>True when the label passes the checks LVM applies before using it (id, sector, CRC, type).</summary>
    public bool IsAcceptedByLvm =>
        Id == "LABELONE" && SectorXl == (ulong)SectorNumber && StoredCrc == ComputedCrc && Type == "LVM2 001";

    /// <summary>Decodes the 512-byte label sector found at <paramref name="sectorNumber"/>.</summary>
    public static LvmLabel Decode(ReadOnlySpan<byte> sector, long sectorNumber)
    {
        if (sector.Length < LvmLabelLayout.SectorBytes)
        {
            throw new ArgumentException($"a label sector is {LvmLabelLayout.SectorBytes} bytes, got {sector.Length}", nameof(sector));
        }

        ArgumentOutOfRangeException.ThrowIfNegative(sectorNumber);
        var raw = sector[..LvmLabelLayout.SectorBytes].ToArray();
        var offsetXl = BinaryPrimitives.ReadUInt32LittleEndian(raw.AsSpan(LvmLabelLayout.OffsetXlOffset));
        var pvh = offsetXl is >= LvmLabelLayout.LabelHeaderLength and <= LvmLabelLayout.MaxPvHeaderOffset
            ? (int)offsetXl
            : LvmLabelLayout.LabelHeaderLength;

        // layout.h: data-area list, metadata-area list, then the extension; lists end at an entry with offset 0.
        var pos = pvh + LvmLabelLayout.DiskLocationsOffset;
        (string, int)? unterminated = null;
        var dataAreas = ReadList(raw, ref pos, "pv_header.data_areas", ref unterminated);
        var mdas = unterminated is null ? ReadList(raw, ref pos, "pv_header.metadata_areas", ref unterminated) : [];
        uint extVersion = 0, flags = 0;
        List<LvmDiskLocation> bootloader = [];
        if (unterminated is null && pos + LvmLabelLayout.ExtensionFixedLength <= LvmLabelLayout.SectorBytes)
        {
            extVersion = BinaryPrimitives.ReadUInt32LittleEndian(raw.AsSpan(pos));
            flags = BinaryPrimitives.ReadUInt32LittleEndian(raw.AsSpan(pos + 4));
            pos += LvmLabelLayout.ExtensionFixedLength;
            if (extVersion != 0)
            {
                bootloader = ReadList(raw, ref pos, "pv_header_extension.bootloader_areas", ref unterminated);
            }
        }

        return new LvmLabel(raw, sectorNumber)
        {
            Id = Encoding.Latin1.GetString(raw, LvmLabelLayout.IdOffset, LvmLabelLayout.IdLength),
            SectorXl = BinaryPrimitives.ReadUInt64LittleEndian(raw.AsSpan(LvmLabelLayout.SectorXlOffset)),
            StoredCrc = BinaryPrimitives.ReadUInt32LittleEndian(raw.AsSpan(LvmLabelLayout.CrcXlOffset)),
            ComputedCrc = LvmCrc.Compute(raw.AsSpan(LvmLabelLayout.CrcStart)),
            OffsetXl = offsetXl,
            Type = Encoding.Latin1.GetString(raw, LvmLabelLayout.TypeOffset, LvmLabelLayout.TypeLength),
            PvHeaderOffset = pvh,
            PvUuid = Encoding.Latin1.GetString(raw, pvh + LvmLabelLayout.PvUuidOffset, LvmLabelLayout.PvUuidLength),
            DeviceSizeBytes = BinaryPrimitives.ReadUInt64LittleEndian(raw.AsSpan(pvh + LvmLabelLayout.DeviceSizeOffset)),
            DataAreas = dataAreas,
            MetadataAreas = mdas,
            ExtensionVersion = extVersion,
            Flags = flags,
            BootloaderAreas = bootloader,
            UnterminatedList = unterminated,
        };
    }

    /// <summary>Decode, then throw <see cref="CorruptDataException"/> for the first error finding.</summary>
    public static LvmLabel Parse(ReadOnlySpan<byte> sector, long sectorNumber)
    {
        var label = Decode(sector, sectorNumber);
        CorruptDataException.ThrowIfErrors(Format, Structure, label.Validate());
        return label;
    }

    /// <summary>
    /// Builds a label as current LVM writes it (offset_xl 32, type "LVM2 001", CRC computed). Throws
    /// <see cref="ArgumentException"/> when the lists do not fit in the sector.
    /// </summary>
    public static LvmLabel Create(long sectorNumber, string pvUuid, ulong deviceSizeBytes,
        IReadOnlyList<LvmDiskLocation> dataAreas, IReadOnlyList<LvmDiskLocation> metadataAreas,
        uint extensionVersion = LvmLabelLayout.CurrentExtensionVersion, uint flags = LvmLabelLayout.FlagPvExtUsed,
        IReadOnlyList<LvmDiskLocation>? bootloaderAreas = null)
    {
        var template = new LvmLabel(new byte[LvmLabelLayout.SectorBytes], sectorNumber)
        {
            PvUuid = LvmUuid.Strip(pvUuid),
            DeviceSizeBytes = deviceSizeBytes,
            DataAreas = dataAreas,
            MetadataAreas = metadataAreas,
            ExtensionVersion = extensionVersion,
            Flags = flags,
            BootloaderAreas = bootloaderAreas ?? [],
        };
        var sector = new byte[LvmLabelLayout.SectorBytes];
        template.Encode(sector);
        return Decode(sector, sectorNumber);
    }

    /// <summary>
    /// Writes the canonical label for this label's fields into <paramref name="destination"/> (512 bytes):
    /// id, sector_xl = <see cref="SectorNumber"/>, offset_xl 32, type "LVM2 001", lists with terminators, and
    /// the extension when <see cref="ExtensionVersion"/> is not 0; the CRC is computed last.
    /// </summary>
    public void Encode(Span<byte> destination)
    {
        if (destination.Length < LvmLabelLayout.SectorBytes)
        {
            throw new ArgumentException($"need {LvmLabelLayout.SectorBytes} bytes", nameof(destination));
        }

        if (PvUuid.Length != LvmUuid.Length)
        {
            throw new ArgumentException($"PV UUID must have 32 characters without dashes, got '{PvUuid}'");
        }

        var s = destination[..LvmLabelLayout.SectorBytes];
        s.Clear();
        LvmLabelLayout.LabelId.CopyTo(s[LvmLabelLayout.IdOffset..]);
        BinaryPrimitives.WriteUInt64LittleEndian(s[LvmLabelLayout.SectorXlOffset..], (ulong)SectorNumber);
        BinaryPrimitives.WriteUInt32LittleEndian(s[LvmLabelLayout.OffsetXlOffset..], LvmLabelLayout.LabelHeaderLength);
        LvmLabelLayout.LabelType.CopyTo(s[LvmLabelLayout.TypeOffset..]);
        var pvh = LvmLabelLayout.LabelHeaderLength;
        Encoding.Latin1.GetBytes(PvUuid, s[(pvh + LvmLabelLayout.PvUuidOffset)..]);
        BinaryPrimitives.WriteUInt64LittleEndian(s[(pvh + LvmLabelLayout.DeviceSizeOffset)..], DeviceSizeBytes);
        var pos = pvh + LvmLabelLayout.DiskLocationsOffset;
        WriteList(s, ref pos, DataAreas);
        WriteList(s, ref pos, MetadataAreas);
        if (ExtensionVersion != 0)
        {
            Require(s, pos, LvmLabelLayout.ExtensionFixedLength);
            BinaryPrimitives.WriteUInt32LittleEndian(s[pos..], ExtensionVersion);
            BinaryPrimitives.WriteUInt32LittleEndian(s[(pos + 4)..], Flags);
            pos += LvmLabelLayout.ExtensionFixedLength;
            WriteList(s, ref pos, BootloaderAreas);
        }

        BinaryPrimitives.WriteUInt32LittleEndian(s[LvmLabelLayout.CrcXlOffset..], LvmCrc.Compute(s[LvmLabelLayout.CrcStart..]));
    }

    /// <summary>Every problem LVM would reject the label for, plus oddities worth knowing. Offsets are PV-relative.</summary>
    public IReadOnlyList<Finding> Validate()
    {
        var f = new List<Finding>();
        var at = OffsetBytes;
        if (Id != "LABELONE")
        {
            f.Add(new Finding("LVM_LABEL_ID", Severity.Error, $"label_header.id is '{Printable(Id)}', expected LABELONE",
                at + LvmLabelLayout.IdOffset, "label_header.id", Printable(Id), "LABELONE"));
        }

        if (SectorXl != (ulong)SectorNumber)
        {
            f.Add(new Finding("LVM_LABEL_SECTOR_MISMATCH", Severity.Error,
                $"label in sector {SectorNumber} says it belongs in sector {SectorXl}; LVM ignores it" +
                (SectorXl < LvmLabelLayout.ScanSectors ? $" (if sector_xl is right, the PV starts {(SectorNumber - (long)SectorXl) * LvmLabelLayout.SectorBytes} bytes from this source's start)" : ""),
                at + LvmLabelLayout.SectorXlOffset, "label_header.sector_xl", SectorXl.ToString(), SectorNumber.ToString()));
        }

        if (StoredCrc != ComputedCrc)
        {
            f.Add(new Finding("LVM_LABEL_CRC", Severity.Error,
                $"label CRC over bytes 20..511 is {Hex.U32(ComputedCrc)}, stored {Hex.U32(StoredCrc)}",
                at + LvmLabelLayout.CrcXlOffset, "label_header.crc_xl", Hex.U32(StoredCrc), Hex.U32(ComputedCrc)));
        }

        if (Type != "LVM2 001")
        {
            var wiped = _raw.AsSpan(LvmLabelLayout.TypeOffset, LvmLabelLayout.TypeLength).IndexOfAnyExcept((byte)0) < 0;
            f.Add(new Finding("LVM_LABEL_TYPE", Severity.Error,
                wiped ? "label type is zeroed (the signature wipefs -a erases); the rest of the label may be intact"
                      : $"label type is '{Printable(Type)}', expected 'LVM2 001'",
                at + LvmLabelLayout.TypeOffset, "label_header.type", Printable(Type), "LVM2 001"));
        }

        if (OffsetXl != PvHeaderOffset)
        {
            f.Add(new Finding("LVM_LABEL_OFFSET", Severity.Error,
                $"offset_xl {OffsetXl} leaves no room for a pv_header; decoded it at {PvHeaderOffset} instead",
                at + LvmLabelLayout.OffsetXlOffset, "label_header.offset_xl", OffsetXl.ToString(), LvmLabelLayout.LabelHeaderLength.ToString()));
        }

        if (UnterminatedList is var (field, offset))
        {
            f.Add(new Finding("LVM_LABEL_LIST_UNTERMINATED", Severity.Error,
                $"{field} runs to the end of the sector without a zero terminator", at + offset, field));
        }

        if (!LvmUuid.IsValid(PvUuid))
        {
            f.Add(new Finding("LVM_LABEL_PV_UUID", Severity.Warning, $"pv_uuid '{Printable(PvUuid)}' is not 32 UUID characters",
                at + PvHeaderOffset + LvmLabelLayout.PvUuidOffset, "pv_header.pv_uuid", Printable(PvUuid)));
        }

        if (DataAreas.Count != 1)
        {
            f.Add(new Finding("LVM_LABEL_DATA_AREAS", Severity.Warning, $"{DataAreas.Count} data areas; LVM writes exactly one",
                at + PvHeaderOffset + LvmLabelLayout.DiskLocationsOffset, "pv_header.data_areas", DataAreas.Count.ToString(), "1"));
        }

        if (MetadataAreas.Count > 2)
        {
            f.Add(new Finding("LVM_LABEL_MDA_COUNT", Severity.Warning, $"{MetadataAreas.Count} metadata areas; LVM uses at most two",
                null, "pv_header.metadata_areas", MetadataAreas.Count.ToString(), "0..2"));
        }

        if (ExtensionVersion > LvmLabelLayout.CurrentExtensionVersion)
        {
            f.Add(new Finding("LVM_LABEL_EXTENSION_VERSION", Severity.Info,
                $"pv_header_extension version {ExtensionVersion} is newer than {LvmLabelLayout.CurrentExtensionVersion}",
                null, "pv_header_extension.version", ExtensionVersion.ToString()));
        }

        return f;
    }

    /// <summary>
    /// Scans sectors 0..3 as LVM does (label.c) and returns the first label LVM would accept. When none is
    /// accepted, returns the first sector starting with LABELONE (check <see cref="IsAcceptedByLvm"/>) and adds
    /// hint findings; returns null when no sector starts with LABELONE.
    /// </summary>
    public static LvmLabel? TryFind(ReadOnlySpan<byte> first2048Bytes, List<Finding>? findings = null)
    {
        LvmLabel? accepted = null, candidate = null;
        for (var s = 0; s < LvmLabelLayout.ScanSectors; s++)
        {
            var start = s * LvmLabelLayout.SectorBytes;
            if (start + LvmLabelLayout.SectorBytes > first2048Bytes.Length)
            {
                break;
            }

            var sector = first2048Bytes.Slice(start, LvmLabelLayout.SectorBytes);
            if (!sector.StartsWith(LvmLabelLayout.LabelId))
            {
                continue;
            }

            var label = Decode(sector, s);
            if (label.IsAcceptedByLvm)
            {
                if (accepted is null)
                {
                    accepted = label;
                }
                else
                {
                    findings?.Add(new Finding("LVM_LABEL_EXTRA", Severity.Warning,
                        $"second valid label in sector {s}; LVM uses the one in sector {accepted.SectorNumber}", label.OffsetBytes));
                }

                continue;
            }

            candidate ??= label;
            findings?.Add(label.WipedTypeHint() ?? new Finding("LVM_LABEL_CANDIDATE", Severity.Warning,
                $"LABELONE in sector {s} is not a valid label: " + string.Join("; ", label.Validate().Where(x => x.Severity == Severity.Error).Select(x => x.Message)),
                label.OffsetBytes));
        }

        return accepted ?? candidate;
    }

    /// <summary>For a label whose type bytes are zero: whether writing "LVM2 001" back would make the CRC match.</summary>
    private Finding? WipedTypeHint()
    {
        if (_raw.AsSpan(LvmLabelLayout.TypeOffset, LvmLabelLayout.TypeLength).IndexOfAnyExcept((byte)0) >= 0)
        {
            return null;
        }

        var fixedUp = (byte[])_raw.Clone();
        LvmLabelLayout.LabelType.CopyTo(fixedUp.AsSpan(LvmLabelLayout.TypeOffset));
        var restores = LvmCrc.Compute(fixedUp.AsSpan(LvmLabelLayout.CrcStart)) == StoredCrc;
        return new Finding("LVM_LABEL_TYPE_WIPED", Severity.Warning,
            restores
                ? $"label in sector {SectorNumber} has its type zeroed (wipefs); writing 'LVM2 001' back at offset {Hex.Offset(OffsetBytes + LvmLabelLayout.TypeOffset)} makes its CRC valid again"
                : $"label in sector {SectorNumber} has its type zeroed (wipefs), and the CRC does not match even with 'LVM2 001' restored",
            OffsetBytes + LvmLabelLayout.TypeOffset, "label_header.type", "", "LVM2 001");
    }

    private static List<LvmDiskLocation> ReadList(byte[] raw, ref int pos, string field, ref (string, int)? unterminated)
    {
        var list = new List<LvmDiskLocation>();
        var start = pos;
        while (true)
        {
            if (pos + LvmDiskLocation.EncodedLength > raw.Length)
            {
                unterminated = (field, start);
                return list;
            }

            var offset = BinaryPrimitives.ReadUInt64LittleEndian(raw.AsSpan(pos));
            var size = BinaryPrimitives.ReadUInt64LittleEndian(raw.AsSpan(pos + 8));
            pos += LvmDiskLocation.EncodedLength;
            if (offset == 0)
            {
                return list;
            }

            list.Add(new LvmDiskLocation(offset, size));
        }
    }

    private static void WriteList(Span<byte> s, ref int pos, IReadOnlyList<LvmDiskLocation> list)
    {
        Require(s, pos, (list.Count + 1) * LvmDiskLocation.EncodedLength);
        foreach (var d in list)
        {
            if (d.OffsetBytes == 0)
            {
                throw new ArgumentException("a disk_locn offset of 0 would terminate the list");
            }

            BinaryPrimitives.WriteUInt64LittleEndian(s[pos..], d.OffsetBytes);
            BinaryPrimitives.WriteUInt64LittleEndian(s[(pos + 8)..], d.SizeBytes);
            pos += LvmDiskLocation.EncodedLength;
        }

        pos += LvmDiskLocation.EncodedLength;
    }

    private static void Require(Span<byte> s, int pos, int length)
    {
        if (pos + length > s.Length)
        {
            throw new ArgumentException("the label's lists do not fit in one 512-byte sector");
        }
    }

    internal static string Printable(string s) =>
        string.Concat(s.Select(c => c is >= ' ' and <= '~' ? c.ToString() : $"\\x{(int)c:X2}"));
}
