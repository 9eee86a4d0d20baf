#!/usr/bin/env python3
"""Seeded fuzz driver for vrescue (see README.md here): mutate SR images and VHD files, run the CLI, record failures.

Usage: vrescue_fuzz.py --kind sr|vhd --seed N [--start I] --cases K [--workers 2] [--timeout 20] [--work DIR]
Case i of a seed is random.Random(f"{seed}:{kind}:{i}"), so any case is reproduced alone with --only i --keep.
"""
import argparse, hashlib, json, os, random, re, shutil, struct, subprocess, sys, time, zlib
from concurrent.futures import ThreadPoolExecutor

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DLL = os.environ.get("FZ_DLL", f"{REPO}/src/VRescue.Cli/bin/Debug/net10.0/vrescue.dll")
CACHE = f"{REPO}/tests/fixtures/cache"
SR_SEEDS = [
    ("sample", f"{CACHE}/sample/image.img", 4),
    ("sr-lun", f"{CACHE}/sr-lun/image.img", 2),
    ("sr-gpt", f"{CACHE}/sr-gpt/image.img", 2),
    ("sr-export", f"{CACHE}/sr-export/image.img", 2),
    ("carve-recreated", f"{CACHE}/carve/recreated.img", 1),
]
VHD_NAMES = ("dynamic", "fixed", "chain-base", "chain-mid", "chain-leaf")
VHD_SEEDS = [(n, f"{CACHE}/vhd-util/{n}.vhd", 1) for n in VHD_NAMES]


def expand_vhd_seeds():
    """The vhd-util samples are stored zstd-compressed; expand them into the fixture cache once (as the tests do)."""
    os.makedirs(f"{CACHE}/vhd-util", exist_ok=True)
    for n in VHD_NAMES:
        target = f"{CACHE}/vhd-util/{n}.vhd"
        if not os.path.exists(target):
            subprocess.run(["zstd", "-q", "-d", "-f", f"{REPO}/tests/fixtures/vhd-util/{n}.vhd.zst", "-o", target], check=True)


DOCUMENTED_RC = {0, 1, 2, 3, 4, 64, 70}
MiB = 1 << 20


def lvm_crc(data, init=0xF597A6CF):
    return zlib.crc32(data, init ^ 0xFFFFFFFF) ^ 0xFFFFFFFF


def vhd_checksum(buf, skip_at, skip_len=4):
    s = sum(b for i, b in enumerate(buf) if not (skip_at <= i < skip_at + skip_len))
    return (~s) & 0xFFFFFFFF


# ---------------------------------------------------------------- seed layout discovery

def read_at(path, off, n):
    with open(path, "rb") as f:
        f.seek(off)
        return f.read(n)


def sparse_copy(src, dst):
    subprocess.run(["cp", "--sparse=always", src, dst], check=True)


_layout_cache = {}


def sr_layout(path):
    if path in _layout_cache:
        return _layout_cache[path]
    size = os.path.getsize(path)
    head = read_at(path, 0, min(size, 64 * MiB))
    lay = {"size": size, "pv": None, "vhd": []}
    for s in range(0, len(head) - 512, 512):
        if head[s:s + 8] == b"LABELONE":
            sector = struct.unpack_from("<Q", head, s + 8)[0]
            pv = s - 512 * sector
            lay["pv"] = pv
            lab = head[s:s + 512]
            offx = struct.unpack_from("<I", lab, 20)[0]
            lay["label"] = s
            lay["pvh"] = s + offx
            i = offx + 40
            while True:
                o, n = struct.unpack_from("<QQ", lab, i); i += 16
                if o == 0 and n == 0: break
                lay["pe_start"] = pv + o
            mdas = []
            while i + 16 <= 512:
                o, n = struct.unpack_from("<QQ", lab, i); i += 16
                if o == 0 and n == 0: break
                mdas.append((pv + o, n))
            lay["mdas"] = mdas
            if mdas:
                mh = pv + mdas[0][0] - pv
                m = head[mh:mh + 512]
                ro, rs, rc, rf = struct.unpack_from("<QQII", m, 40)
                lay["mda"] = mh
                lay["mda_size"] = mdas[0][1]
                lay["text"] = (mh + ro, rs)
            break
    # VHD structures inside LVs: footer copies ("conectix") and dynamic headers ("cxsparse")
    with open(path, "rb") as f:
        off = 0
        while off < size:
            f.seek(off)
            chunk = f.read(16 * MiB)
            if not chunk: break
            for m in re.finditer(b"conectix|cxsparse", chunk):
                if (m.start() % 512) == 0:
                    lay["vhd"].append((off + m.start(), m.group(0).decode()))
            off += len(chunk)
    lay["mgt"] = find_mgt(path, lay)
    _layout_cache[path] = lay
    return lay


# ---------------------------------------------------------------- hostile values

def hostile_u(rng, bits):
    mx = (1 << bits) - 1
    return rng.choice([0, 1, mx, mx - 1, 1 << (bits - 1), (1 << (bits - 1)) - 1, rng.randrange(mx + 1),
                       rng.randrange(1 << min(bits, 24)), 512, 4096, 1 << 30, (1 << 31) - 1, 0xFFFFFFFF & mx,
                       rng.randrange(1 << 16) * 512])


def hostile_num_text(rng):
    return rng.choice(["0", "-1", "-9223372036854775808", "9223372036854775807", "18446744073709551615",
                       "99999999999999999999999", "4294967296", "2147483648", "-2147483649", str(rng.randrange(1 << 40)),
                       "1e9", "0x10", "", "+5", "--3", "7.5", str(rng.randrange(100000))])


# ---------------------------------------------------------------- SR mutations (on the copied file)

def pick_region(rng, lay):
    """An (offset, length) range that is structurally interesting."""
    pv = lay["pv"] or 0
    cands = [("label", pv, 2048), ("any16", 0, min(lay["size"], 16 * MiB))]
    if "mda" in lay:
        cands += [("mdahdr", lay["mda"], 512), ("text", lay["text"][0], max(1, lay["text"][1])),
                  ("ring", lay["mda"], min(lay["mda_size"], 256 * 1024))]
    if lay["vhd"]:
        o, _ = rng.choice(lay["vhd"])
        cands.append(("vhdstruct", o, 1536))
    if "pe_start" in lay:
        cands.append(("pe", lay["pe_start"], min(8 * MiB, max(1, lay["size"] - lay["pe_start"]))))
    return rng.choice(cands)


def fix_label_crc(f, lay):
    if "label" not in lay: return
    f.seek(lay["label"]); lab = bytearray(f.read(512))
    struct.pack_into("<I", lab, 16, lvm_crc(bytes(lab[20:512])))
    f.seek(lay["label"]); f.write(lab)


def fix_mda_crc(f, lay):
    if "mda" not in lay: return
    f.seek(lay["mda"]); m = bytearray(f.read(512))
    struct.pack_into("<I", m, 0, lvm_crc(bytes(m[4:512])))
    f.seek(lay["mda"]); f.write(m)


def fix_text_crc(f, lay):
    if "mda" not in lay: return
    f.seek(lay["mda"]); m = bytearray(f.read(512))
    ro, rs = struct.unpack_from("<QQ", m, 40)
    if rs > 16 * MiB or ro > 1 << 40: return
    f.seek(lay["mda"] + ro); t = f.read(rs)
    struct.pack_into("<I", m, 56, lvm_crc(t))
    f.seek(lay["mda"]); f.write(m)
    fix_mda_crc(f, lay)


def mut_flip(rng, f, lay, desc):
    name, o, n = pick_region(rng, lay)
    k = rng.choice([1, 1, 2, 4, 8, 32])
    for _ in range(k):
        p = o + rng.randrange(n)
        f.seek(p); b = f.read(1)
        if not b: continue
        v = b[0] ^ (1 << rng.randrange(8)) if rng.random() < 0.6 else rng.randrange(256)
        f.seek(p); f.write(bytes([v]))
    fix = rng.random() < 0.5
    if fix:
        fix_text_crc(f, lay); fix_label_crc(f, lay)
    desc.append(f"flip {k} in {name}@{o}+{n} fixcrc={fix}")


def mut_fill(rng, f, lay, desc):
    name, o, n = pick_region(rng, lay)
    ln = min(n, int(2 ** rng.uniform(0, 20)))
    start = o + rng.randrange(max(1, n - ln + 1))
    val = rng.choice([0, 0xFF])
    f.seek(start); f.write(bytes([val]) * ln)
    desc.append(f"fill {val:#x} {name} {start}+{ln}")


def edit_metadata(rng, text):
    """Hostile edits of LVM text metadata."""
    edits = []
    kind = rng.choice(["nums", "nums", "nest", "longstr", "duplv", "pastpv", "manysegs", "brace", "strings", "unterminated", "hugearr", "manylv"])
    if kind == "nums":
        nums = list(re.finditer(rb"(= )(-?\d+)", text))
        for _ in range(rng.randint(1, 4)):
            if not nums: break
            m = rng.choice(nums)
            text = text[:m.start(2)] + hostile_num_text(rng).encode() + text[m.end(2):]
            nums = list(re.finditer(rb"(= )(-?\d+)", text))
    elif kind == "nest":
        depth = rng.choice([100, 1000, 10000, 100000])
        ins = b"deep " + b"{ a " * depth + b"}" * depth + b"\n"
        p = text.find(b"{") + 1
        text = text[:p] + b"\n" + ins + text[p:]
    elif kind == "longstr":
        ln = rng.choice([4096, 65536, 1 << 20])
        p = text.find(b'creation_host = "')
        if p < 0: p = text.find(b'id = "')
        q = text.find(b'"', p) + 1
        text = text[:q] + b"x" * ln + text[q:]
    elif kind == "duplv":
        m = re.search(rb"\n((?:VHD|LV|MGT)[^\n]* \{\n.*?\n\}\n)", text, re.S)
        if m:
            blk = m.group(1)
            # a whole LV block ends at the matching brace: take through the closing of segments
            start = m.start(1)
            depth = 0; i = start
            while i < len(text):
                if text[i:i + 1] == b"{": depth += 1
                elif text[i:i + 1] == b"}":
                    depth -= 1
                    if depth == 0: break
                i += 1
            blk = text[start:i + 2]
            text = text[:i + 2] + blk + text[i + 2:]
    elif kind == "pastpv":
        ms = list(re.finditer(rb'"pv0", (\d+)', text))
        if ms:
            m = rng.choice(ms)
            text = text[:m.start(1)] + rng.choice([b"99999", b"4294967295", b"-1", b"7", b"100000000000", b"10000000000000", b"9223372036854775807"]) + text[m.end(1):]
        ms = list(re.finditer(rb"extent_count = (\d+)", text))
        if ms and rng.random() < 0.5:
            m = rng.choice(ms)
            text = text[:m.start(1)] + rng.choice([b"99999999", b"0", b"-5", b"4294967296", b"9223372036854775807", b"2199023255551"]) + text[m.end(1):]
    elif kind == "manysegs":
        m = re.search(rb"segment_count = (\d+)", text)
        if m:
            text = text[:m.start(1)] + rng.choice([b"100000", b"0", b"-1", b"2147483647"]) + text[m.end(1):]
    elif kind == "brace":
        for _ in range(rng.randint(1, 3)):
            ps = [m.start() for m in re.finditer(rb"[{}\[\]]", text)]
            if not ps: break
            p = rng.choice(ps)
            text = text[:p] + rng.choice([b"", b"{", b"}", b"[", b"]", b"{{", b"]]"]) + text[p + 1:]
    elif kind == "strings":
        ms = list(re.finditer(rb'"[^"\n]*"', text))
        for _ in range(rng.randint(1, 3)):
            if not ms: break
            m = rng.choice(ms)
            text = text[:m.start()] + rng.choice([b'"', b'"\\', b'"\x00"', b'"\\"\\"', b'""', b"\"\xff\xfe\"", b'"pv9"', b'"pv0"', b"123"]) + text[m.end():]
            ms = list(re.finditer(rb'"[^"\n]*"', text))
    elif kind == "unterminated":
        text = text[:rng.randrange(len(text))]
    elif kind == "hugearr":
        m = re.search(rb"stripes = \[", text)
        if m:
            n = rng.choice([1000, 100000])
            text = text[:m.end()] + b'"pv0", 0, ' * n + text[m.end():]
    elif kind == "manylv":
        p = text.find(b"logical_volumes {")
        if p >= 0:
            p += len(b"logical_volumes {")
            n = rng.choice([1000, 20000])
            blk = b"".join(b'\nLV-%08d {\nid = "x"\nstatus = ["READ"]\nsegment_count = 1\nsegment1 {\nstart_extent = 0\nextent_count = 1\ntype = "striped"\nstripe_count = 1\nstripes = ["pv0", 0]\n}\n}\n' % i for i in range(n))
            text = text[:p] + blk + text[p:]
    return kind, text


def mut_meta(rng, f, lay, desc):
    if "mda" not in lay:
        return mut_flip(rng, f, lay, desc)
    to, ts = lay["text"]
    f.seek(to); text = f.read(ts)
    kind, new = edit_metadata(rng, text)
    if len(new) > lay["mda_size"] - (to - lay["mda"]) - 512:
        new = new[:lay["mda_size"] - (to - lay["mda"]) - 512]
    f.seek(to); f.write(new)
    f.seek(lay["mda"]); m = bytearray(f.read(512))
    struct.pack_into("<Q", m, 48, len(new))
    fix = rng.random() < 0.85
    if fix:
        struct.pack_into("<I", m, 56, lvm_crc(new))
    struct.pack_into("<I", m, 0, lvm_crc(bytes(m[4:512])))
    f.seek(lay["mda"]); f.write(m)
    desc.append(f"meta {kind} len {ts}->{len(new)} fixcrc={fix}")


def mut_hdr(rng, f, lay, desc):
    if "label" not in lay:
        return mut_flip(rng, f, lay, desc)
    if rng.random() < 0.5:
        f.seek(lay["label"]); lab = bytearray(f.read(512))
        offx = struct.unpack_from("<I", lab, 20)[0]
        if offx > 512 - 96: offx = 32  # an earlier mutation moved offset_xl: edit where LVM writes the pv_header
        field = rng.choice(["sector_xl", "offset_xl", "dev_size", "da_off", "da_size", "mda_off", "mda_size", "ext"])
        if field == "sector_xl": struct.pack_into("<Q", lab, 8, hostile_u(rng, 64))
        elif field == "offset_xl": struct.pack_into("<I", lab, 20, hostile_u(rng, 32))
        elif field == "dev_size": struct.pack_into("<Q", lab, offx + 32, hostile_u(rng, 64))
        elif field == "da_off": struct.pack_into("<Q", lab, offx + 40, hostile_u(rng, 64))
        elif field == "da_size": struct.pack_into("<Q", lab, offx + 48, hostile_u(rng, 64))
        elif field == "mda_off": struct.pack_into("<Q", lab, offx + 72, hostile_u(rng, 64))
        elif field == "mda_size": struct.pack_into("<Q", lab, offx + 80, hostile_u(rng, 64))
        else:
            # no terminators: disk_locn lists run to the end of the sector
            for i in range(offx + 40, 512 - 8, 8):
                struct.pack_into("<Q", lab, i, hostile_u(rng, 64) if rng.random() < 0.3 else rng.randrange(1, 1 << 20) * 512)
        if rng.random() < 0.9:
            struct.pack_into("<I", lab, 16, lvm_crc(bytes(lab[20:512])))
        f.seek(lay["label"]); f.write(lab)
        desc.append(f"hdr label {field}")
    else:
        f.seek(lay["mda"]); m = bytearray(f.read(512))
        field = rng.choice(["version", "start", "size", "raw_off", "raw_size", "raw2", "wrap"])
        if field == "version": struct.pack_into("<I", m, 20, hostile_u(rng, 32))
        elif field == "start": struct.pack_into("<Q", m, 24, hostile_u(rng, 64))
        elif field == "size": struct.pack_into("<Q", m, 32, hostile_u(rng, 64))
        elif field == "raw_off": struct.pack_into("<Q", m, 40, hostile_u(rng, 64))
        elif field == "raw_size": struct.pack_into("<Q", m, 48, hostile_u(rng, 64))
        elif field == "raw2":
            for i in range(64, 512 - 24, 24):
                struct.pack_into("<QQII", m, i, hostile_u(rng, 64), hostile_u(rng, 64), rng.randrange(1 << 32), rng.randrange(4))
        else:
            # text that wraps around the end of the ring
            ms = struct.unpack_from("<Q", m, 32)[0]
            struct.pack_into("<Q", m, 40, max(512, ms - rng.randrange(1, 4096)))
            struct.pack_into("<Q", m, 48, rng.choice([2282, 8192, ms, ms + 1, 1 << 32]))
        if rng.random() < 0.9:
            struct.pack_into("<I", m, 0, lvm_crc(bytes(m[4:512])))
        f.seek(lay["mda"]); f.write(m)
        desc.append(f"hdr mda {field}")


def vhd_struct_mutate(rng, buf, kind, desc):
    """Mutate a 512-byte footer or a 1024-byte dynamic header in place (bytearray); fix its checksum usually."""
    if kind == "conectix":
        field = rng.choice(["features", "version", "dataoff", "cursize", "origsize", "geometry", "type", "uuid", "cookie", "saved"])
        if field == "features": struct.pack_into(">I", buf, 8, hostile_u(rng, 32))
        elif field == "version": struct.pack_into(">I", buf, 12, hostile_u(rng, 32))
        elif field == "dataoff": struct.pack_into(">Q", buf, 16, hostile_u(rng, 64))
        elif field == "cursize": struct.pack_into(">Q", buf, 48, hostile_u(rng, 64))
        elif field == "origsize": struct.pack_into(">Q", buf, 40, hostile_u(rng, 64))
        elif field == "geometry": struct.pack_into(">I", buf, 56, hostile_u(rng, 32))
        elif field == "type": struct.pack_into(">I", buf, 60, rng.choice([0, 1, 2, 3, 4, 5, 6, 0xFFFFFFFF]))
        elif field == "uuid": buf[68:84] = bytes(rng.randrange(256) for _ in range(16))
        elif field == "cookie": buf[0:8] = rng.choice([b"conectiX", b"\0" * 8, b"cxsparse"])
        else: buf[84] = rng.randrange(256)
        if rng.random() < 0.8:
            struct.pack_into(">I", buf, 64, vhd_checksum(buf, 64))
        desc.append(f"footer.{field}")
    else:
        field = rng.choice(["dataoff", "tableoff", "version", "maxent", "blocksize", "blocksize", "parentuuid", "locators", "pname"])
        if field == "dataoff": struct.pack_into(">Q", buf, 8, hostile_u(rng, 64))
        elif field == "tableoff": struct.pack_into(">Q", buf, 16, hostile_u(rng, 64))
        elif field == "version": struct.pack_into(">I", buf, 24, hostile_u(rng, 32))
        elif field == "maxent": struct.pack_into(">I", buf, 28, hostile_u(rng, 32))
        elif field == "blocksize": struct.pack_into(">I", buf, 32, rng.choice([0, 1, 511, 512, 513, 4096, 1 << 21, 3 << 20, 1 << 31, 0xFFFFFFFF, 0x80000000, 1 << 28]))
        elif field == "parentuuid": buf[40:56] = bytes(rng.randrange(256) for _ in range(16))
        elif field == "pname": buf[64:576] = bytes(rng.randrange(256) for _ in range(512)) if rng.random() < 0.5 else b"\xd8\x00" * 256
        else:
            for i in range(8):
                o = 576 + 24 * i
                if rng.random() < 0.5:
                    struct.pack_into(">4sIIIQ", buf, o, rng.choice([b"W2ru", b"W2ku", b"Mac ", b"MacX", b"Wi2r", b"Wi2k", b"\0\0\0\0", b"zzzz"]),
                                     hostile_u(rng, 32), hostile_u(rng, 32), 0, hostile_u(rng, 64))
        if rng.random() < 0.8:
            struct.pack_into(">I", buf, 36, vhd_checksum(buf, 36))
        desc.append(f"header.{field}")


def mut_vhdsr(rng, f, lay, desc):
    if not lay["vhd"]:
        return mut_flip(rng, f, lay, desc)
    o, kind = rng.choice(lay["vhd"])
    n = 512 if kind == "conectix" else 1024
    f.seek(o); buf = bytearray(f.read(n))
    if len(buf) < n: return
    for _ in range(rng.randint(1, 3)):
        vhd_struct_mutate(rng, buf, kind, desc)
    f.seek(o); f.write(buf)
    if kind == "cxsparse" and rng.random() < 0.5:
        # BAT entries right after the header
        to = struct.unpack_from(">Q", buf, 16)[0]
        base = o - 512  # header at +512 of the VHD
        if to < 1 << 32:
            for _ in range(rng.randint(1, 8)):
                f.seek(base + to + 4 * rng.randrange(64))
                f.write(struct.pack(">I", hostile_u(rng, 32)))
            desc.append("bat")
    desc.insert(0, f"vhdsr@{o}")


def find_mgt(path, lay):
    if "pe_start" not in lay: return None
    for k in range(0, 64):
        o = lay["pe_start"] + k * 4 * MiB
        if o >= lay["size"]: break
        if read_at(path, o, 5) == b"XSSM:": return o
    return None


def mut_mgt(rng, f, lay, desc):
    o = lay.get("mgt")
    if o is None:
        return mut_flip(rng, f, lay, desc)
    f.seek(o); vol = bytearray(f.read(64 * 1024))
    kind = rng.choice(["len", "len", "tags", "entity", "longname", "nest", "dupuuid", "utf8", "fill", "ver"])
    def put(off, b, pad=None):
        vol[off:off + len(b)] = b
    if kind == "len":
        v = hostile_num_text(rng).encode()[:14]
        put(0, b"XSSM:" + v.ljust(14, b" ") + b":1:2")
    elif kind == "ver":
        put(0, b"XSSM:5120      :" + rng.choice([b"999:999", b"-1:0", b"1", b"", b"a:b", b"1:2:3:4"]) + b" " * 8)
    elif kind == "tags":
        for _ in range(rng.randint(1, 6)):
            ms = [m.start() for m in re.finditer(rb"<|>", vol[:8192])]
            if not ms: break
            p = rng.choice(ms)
            vol[p:p + 1] = rng.choice([b" ", b"<", b">", b"</", b"<vdi>", b"</vdi>", b"\x00"])
        vol = vol[:64 * 1024]
    elif kind == "entity":
        ms = list(re.finditer(rb"<name_label>", vol[:8192]))
        if ms:
            m = rng.choice(ms)
            ent = rng.choice([b"&#99999999;", b"&#x110000;", b"&#xD800;", b"&unknown;", b"&amp", b"&#;", b"&#x;", b"&" * 20, b"&#0;"])
            put(m.end(), ent)
    elif kind == "longname":
        ms = list(re.finditer(rb"<name_label>", vol[:8192]))
        if ms:
            m = rng.choice(ms)
            put(m.end(), b"N" * rng.choice([400, 600, 1000, 3000]))
    elif kind == "nest":
        p = 2048 + 1024 * rng.randrange(3)
        blk = b"<vdi>" * 90 + b"<uuid>x</uuid>" + b"</vdi>" * 90
        put(p, blk[:1024])
    elif kind == "dupuuid":
        put(2048 + 1024 * rng.randrange(1, 3), bytes(vol[2048:3072]))
    elif kind == "utf8":
        for _ in range(16):
            p = 512 + rng.randrange(4096)
            vol[p] = rng.choice([0x80, 0xC0, 0xFF, 0xFE, 0xED, 0x00])
    else:
        st = rng.randrange(8192); ln = rng.randrange(1, 2048)
        vol[st:st + ln] = bytes([rng.choice([0, 0xFF, 0x20])]) * ln
        vol = vol[:64 * 1024]
    f.seek(o); f.write(bytes(vol))
    desc.append(f"mgt {kind}")


def crc32(b):
    return zlib.crc32(b) & 0xFFFFFFFF


def mut_gpt(rng, f, lay, desc):
    f.seek(512); h = bytearray(f.read(92))
    if h[:8] != b"EFI PART":
        return mut_mbr(rng, f, lay, desc)
    which = rng.choice(["hdr", "hdr", "entries", "both"])
    if which in ("hdr", "both"):
        field = rng.choice(["hsize", "cur", "backup", "first", "last", "entlba", "count", "esize", "rev"])
        off = {"rev": (8, "<I"), "hsize": (12, "<I"), "cur": (24, "<Q"), "backup": (32, "<Q"), "first": (40, "<Q"), "last": (48, "<Q"),
               "entlba": (72, "<Q"), "count": (80, "<I"), "esize": (84, "<I")}[field]
        bits = 32 if off[1] == "<I" else 64
        struct.pack_into(off[1], h, off[0], hostile_u(rng, bits) if rng.random() < 0.7 else rng.choice([0, 1, 2, 3, 127, 129, 4097, 65536, 8, 16, 132]))
        desc.append(f"gpt hdr {field}")
    if which in ("entries", "both"):
        elba = struct.unpack_from("<Q", h, 72)[0]
        cnt = struct.unpack_from("<I", h, 80)[0]
        esz = struct.unpack_from("<I", h, 84)[0]
        if elba < 64 and 0 < esz <= 512 and 0 < cnt <= 256:
            f.seek(elba * 512); ent = bytearray(f.read(cnt * esz))
            for _ in range(rng.randint(1, 4)):
                i = rng.randrange(min(cnt, 4)) * esz
                fld = rng.choice(["first", "last", "type", "name"])
                if fld == "first": struct.pack_into("<Q", ent, i + 32, hostile_u(rng, 64))
                elif fld == "last": struct.pack_into("<Q", ent, i + 40, hostile_u(rng, 64))
                elif fld == "type": ent[i:i + 16] = bytes(rng.randrange(256) for _ in range(16))
                else: ent[i + 56:i + 128] = bytes(rng.randrange(256) for _ in range(72))
                desc.append(f"gpt entry {fld}")
            f.seek(elba * 512); f.write(ent)
            struct.pack_into("<I", h, 88, crc32(bytes(ent)))
    if rng.random() < 0.85:
        hs = struct.unpack_from("<I", h, 12)[0]
        struct.pack_into("<I", h, 16, 0)
        struct.pack_into("<I", h, 16, crc32(bytes(h[:min(92, hs)])))
    f.seek(512); f.write(h)


def mut_mbr(rng, f, lay, desc):
    f.seek(0); m = bytearray(f.read(512))
    kind = rng.choice(["loop", "huge", "overlap", "random"])
    def entry(i, typ, start, size):
        struct.pack_into("<B3sB3sII", m, 446 + 16 * i, 0, b"\0\0\0", typ, b"\0\0\0", start & 0xFFFFFFFF, size & 0xFFFFFFFF)
    if kind == "loop":
        # extended partition whose EBR links back to itself
        entry(0, 0x05, 2048, 1 << 20)
        ebr = bytearray(512); ebr[510:512] = b"\x55\xaa"
        struct.pack_into("<B3sB3sII", ebr, 446, 0, b"\0\0\0", 0x8e, b"\0\0\0", 1, 1000)
        struct.pack_into("<B3sB3sII", ebr, 462, 0, b"\0\0\0", 0x05, b"\0\0\0", rng.choice([0, 1, 2048, 0xFFFFFFFF]), 100)
        f.seek(2048 * 512); f.write(ebr)
    elif kind == "huge":
        entry(rng.randrange(4), rng.choice([0x83, 0x8e, 0xee, 0x05, 0x0f]), hostile_u(rng, 32), hostile_u(rng, 32))
    elif kind == "overlap":
        for i in range(4): entry(i, 0x8e, 1, 0xFFFFFFFF)
    else:
        for i in range(446, 510): m[i] = rng.randrange(256)
    m[510:512] = b"\x55\xaa"
    f.seek(0); f.write(m)
    desc.append(f"mbr {kind}")


SR_FAMILIES = {"mgt": mut_mgt, "gpt": mut_gpt, "mbr": mut_mbr, "flip": mut_flip, "fill": mut_fill, "meta": mut_meta, "hdr": mut_hdr, "vhdsr": mut_vhdsr, "trunc": None}


def make_sr_mutant(rng, seedpath, dst, family):
    lay = sr_layout(seedpath)
    sparse_copy(seedpath, dst)
    desc = []
    if family == "trunc":
        pv = lay["pv"] or 0
        pts = [pv + rng.randrange(2048), rng.randrange(min(lay["size"], 16 * MiB)), rng.randrange(lay["size"])]
        if "mda" in lay: pts += [lay["mda"] + rng.randrange(512), lay["text"][0] + rng.randrange(max(1, lay["text"][1]))]
        if "pe_start" in lay: pts += [lay["pe_start"] + rng.randrange(4 * MiB)]
        if lay["vhd"]: pts.append(rng.choice(lay["vhd"])[0] + rng.randrange(1536))
        pts.append(lay["size"] - rng.randrange(1, 1 << 20))
        p = max(0, min(lay["size"] - 1, rng.choice(pts)))
        os.truncate(dst, p)
        desc.append(f"trunc {p}")
    else:
        with open(dst, "r+b") as f:
            for _ in range(1 if rng.random() < 0.7 else rng.randint(2, 3)):
                SR_FAMILIES[family](rng, f, lay, desc)
    return "; ".join(desc)


# ---------------------------------------------------------------- VHD file mutations

def vhd_layout(path):
    size = os.path.getsize(path)
    foot = read_at(path, size - 512, 512)
    head = read_at(path, 0, 2048)
    lay = {"size": size, "dynamic": head[:8] == b"conectix"}
    if lay["dynamic"]:
        do = struct.unpack_from(">Q", head, 16)[0]
        h = read_at(path, do, 1024)
        lay["hdr"] = do
        lay["bat"] = struct.unpack_from(">Q", h, 16)[0]
        lay["bat_n"] = struct.unpack_from(">I", h, 28)[0]
        lay["bs"] = struct.unpack_from(">I", h, 32)[0]
        cur = struct.unpack_from(">Q", foot, 48)[0]
        lay["bat_used"] = max(1, min(lay["bat_n"], -(-cur // max(1, lay["bs"]))))
    return lay


def mut_vhd(rng, path, family):
    lay = vhd_layout(path)
    size = lay["size"]
    desc = [family]
    if family == "vtrunc":
        pts = [rng.randrange(size), rng.randrange(2048), size - rng.randrange(1, 1024), size - 512 + rng.randrange(-8, 8)]
        if lay["dynamic"]: pts += [lay["bat"] + rng.randrange(max(1, 4 * lay["bat_n"]))]
        p = max(0, min(size - 1, rng.choice(pts)))
        os.truncate(path, p); desc.append(str(p))
        return " ".join(desc)
    with open(path, "r+b") as f:
        if family == "vflip" or family == "vfill":
            regions = [(0, 512), (size - 512, 512), (0, min(size, 1 << 20))]
            if lay["dynamic"]: regions += [(lay["hdr"], 1024), (lay["bat"], max(4, 4 * lay["bat_used"]))]
            o, n = rng.choice(regions)
            if family == "vflip":
                for _ in range(rng.choice([1, 2, 8, 32])):
                    p = o + rng.randrange(n); f.seek(p); b = f.read(1)
                    f.seek(p); f.write(bytes([b[0] ^ (1 << rng.randrange(8))]))
            else:
                ln = min(n, int(2 ** rng.uniform(0, 16))); st = o + rng.randrange(max(1, n - ln + 1))
                f.seek(st); f.write(bytes([rng.choice([0, 255])]) * ln)
            desc.append(f"{o}+{n}")
        elif family == "vfooter":
            which = rng.choice(["tail", "head", "both"])
            f.seek(size - 512); buf = bytearray(f.read(512))
            vhd_struct_mutate(rng, buf, "conectix", desc)
            if which in ("tail", "both"): f.seek(size - 512); f.write(buf)
            if which in ("head", "both") and lay["dynamic"]: f.seek(0); f.write(buf)
            desc.append(which)
        elif family == "vheader" or family == "vloc":
            if not lay["dynamic"]:
                f.seek(size - 512); buf = bytearray(f.read(512)); vhd_struct_mutate(rng, buf, "conectix", desc); f.seek(size - 512); f.write(buf)
            else:
                f.seek(lay["hdr"]); buf = bytearray(f.read(1024))
                if family == "vloc":
                    for i in range(8):
                        o = 576 + 24 * i
                        if rng.random() < 0.6:
                            struct.pack_into(">4sIIIQ", buf, o, rng.choice([b"W2ru", b"W2ku", b"Mac ", b"MacX", b"Wi2r", b"Wi2k", b"\0\0\0\0", b"zzzz"]),
                                             rng.choice([0, 1, 8, 0xFFFFFFFF, rng.randrange(1 << 20)]), rng.choice([0, 1, 512, 4096, 0xFFFFFFFF, 0x7FFFFFFF, rng.randrange(1 << 20)]),
                                             0, rng.choice([0, 512, size - 512, size, 1 << 62, 0xFFFFFFFFFFFFFFFF, rng.randrange(size)]))
                    if rng.random() < 0.5:
                        # make it differencing so locators matter
                        f.seek(size - 512); ft = bytearray(f.read(512)); struct.pack_into(">I", ft, 60, 4)
                        struct.pack_into(">I", ft, 64, vhd_checksum(ft, 64)); f.seek(size - 512); f.write(ft); f.seek(0); f.write(ft)
                        desc.append("->diff")
                    struct.pack_into(">I", buf, 36, vhd_checksum(buf, 36))
                else:
                    vhd_struct_mutate(rng, buf, "cxsparse", desc)
                f.seek(lay["hdr"]); f.write(buf)
        elif family == "vbat":
            if not lay["dynamic"]:
                f.seek(rng.randrange(size)); f.write(bytes(rng.randrange(256) for _ in range(16)))
            else:
                n = lay["bat_used"] if rng.random() < 0.9 else max(1, lay["bat_n"])
                mode = rng.choice(["random", "dup", "header", "footer", "pasteof", "all"])
                cnt = n if mode == "all" else rng.randint(1, min(n, 16))
                used = [struct.unpack(">I", read_at(path, lay["bat"] + 4 * i, 4))[0] for i in range(min(n, 4096))]
                used = [u for u in used if u != 0xFFFFFFFF] or [3]
                for _ in range(cnt):
                    i = rng.randrange(n)
                    v = {"random": hostile_u(rng, 32), "dup": rng.choice(used), "header": rng.choice([0, 1, 2, 3]),
                         "footer": (size - 512) // 512, "pasteof": size // 512 + rng.randrange(1 << 16), "all": hostile_u(rng, 32)}[mode]
                    f.seek(lay["bat"] + 4 * i); f.write(struct.pack(">I", v & 0xFFFFFFFF))
                desc.append(mode)
    return " ".join(desc)


VHD_FAMILIES = ["vflip", "vfill", "vtrunc", "vfooter", "vheader", "vbat", "vloc"]


# ---------------------------------------------------------------- running

STACK_RE = re.compile(r"^\s+at \S+.*\(|Unhandled exception|   at VRescue|   at System", re.M)


def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(4 * MiB)
            if not b: break
            h.update(b)
    return h.hexdigest()


def run_cmd(argv, cwd, timeout):
    t0 = time.time()
    tf = os.path.join(cwd, "..", "time.txt")
    try:
        p = subprocess.run(["/usr/bin/time", "-v", "-o", tf, "dotnet", DLL] + argv, cwd=cwd, capture_output=True, timeout=timeout)
        rc, out, err, to = p.returncode, p.stdout, p.stderr, False
    except subprocess.TimeoutExpired as e:
        rc, out, err, to = None, e.stdout or b"", e.stderr or b"", True
    rss = 0
    try:
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(tf).read())
        rss = int(m.group(1)) if m else 0
    except OSError:
        pass
    return {"rc": rc, "timeout": to, "rss_kb": rss, "secs": round(time.time() - t0, 2),
            "stdout": out.decode("utf-8", "replace"), "stderr": err.decode("utf-8", "replace")}


def classify(cmdname, r, outdir):
    fails = []
    if r["timeout"]: fails.append("timeout")
    else:
        if r["rc"] not in DOCUMENTED_RC: fails.append(f"rc{r['rc']}")
        if r["rc"] == 70: fails.append("internal")
        if r["rc"] == 64: fails.append("usage")
    if STACK_RE.search(r["stderr"]) or STACK_RE.search(r["stdout"]): fails.append("stacktrace")
    if r["rss_kb"] > 1024 * 1024: fails.append("rss")
    if r["rc"] not in (None, 0) and not r["stderr"].strip() and not r["stdout"].strip(): fails.append("silent")
    if cmdname == "probe-json" and r["rc"] in (0, 1, 2, 3):
        try: json.loads(r["stdout"])
        except Exception: fails.append("badjson")
    if cmdname == "recover" and r["rc"] in (0, 1, 2) and outdir and not os.path.exists(os.path.join(outdir, "report.json")):
        fails.append("noreport")
    return fails


def run_case(args, kind, i):
    rng = random.Random(f"{args.seed}:{kind}:{i}")
    cdir = os.path.join(args.work, f"{kind}-{i}")
    shutil.rmtree(cdir, ignore_errors=True)
    os.makedirs(os.path.join(cdir, "in")); os.makedirs(os.path.join(cdir, "cwd"))
    if kind == "sr":
        seeds = SR_SEEDS
    else:
        seeds = VHD_SEEDS
    name, seedpath, _ = rng.choices(seeds, weights=[w for _, _, w in seeds])[0]
    fams = [x.strip() for x in args.families.split(",")] if args.families else (list(SR_FAMILIES) if kind == "sr" else VHD_FAMILIES)
    family = args.family or rng.choice(fams)
    ext = ".img" if kind == "sr" else ".vhd"
    mut = os.path.join(cdir, "in", "m" + ext)
    if kind == "sr":
        desc = make_sr_mutant(rng, seedpath, mut, family)
        cmds = [("probe", ["probe", mut]), ("probe-json", ["probe", mut, "--json"]),
                ("recover", ["recover", mut, "--out", "out-recover"]), ("lvm-history", ["lvm", "history", mut]),
                ("carve", ["carve", mut, "--out", "out-carve"])]
    else:
        shutil.copyfile(seedpath, mut)
        desc = mut_vhd(rng, mut, family)
        cmds = [("vhd-check", ["vhd", "check", mut]), ("vhd-repair", ["vhd", "repair", mut, "--out", "out-repair/r.vhd"])]
    h0 = sha(mut)
    results = []
    cwd = os.path.join(cdir, "cwd")
    for cname, argv in cmds:
        if cname == "vhd-repair": os.makedirs(os.path.join(cwd, "out-repair"), exist_ok=True)
        r = run_cmd(argv, cwd, args.timeout)
        outdir = None
        for j, a in enumerate(argv):
            if a == "--out": outdir = os.path.join(cwd, argv[j + 1])
        fails = classify(cname, r, outdir)
        results.append({"cmd": cname, "fails": fails, **r})
    h1 = sha(mut)
    extra = []
    if h0 != h1: extra.append("input-modified")
    if sorted(os.listdir(os.path.join(cdir, "in"))) != ["m" + ext]: extra.append("write-beside-input:" + ",".join(os.listdir(os.path.join(cdir, "in"))))
    allowed = {"out-recover", "out-carve", "out-repair"}
    stray = [x for x in os.listdir(cwd) if x not in allowed]
    if stray: extra.append("write-outside-out:" + ",".join(stray))
    rec = {"kind": kind, "i": i, "seed": name, "family": family, "desc": desc, "extra": extra,
           "results": [{k: (v[-3000:] if isinstance(v, str) else v) for k, v in r.items()} for r in results]}
    bad = extra or any(r["fails"] for r in results)
    if not bad and not args.keep:
        shutil.rmtree(cdir, ignore_errors=True)
    return rec


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--kind", choices=["sr", "vhd"], required=True)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--cases", type=int, default=100)
    ap.add_argument("--only", type=int, default=None)
    ap.add_argument("--family", default=None)
    ap.add_argument("--families", default=None)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=int, default=20)
    ap.add_argument("--work", default="/tmp/vrescue-fuzz")
    ap.add_argument("--log", default=None)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    if args.kind == "vhd":
        expand_vhd_seeds()
    missing = [p for _, p, _ in (SR_SEEDS if args.kind == "sr" else VHD_SEEDS) if not os.path.exists(p)]
    if missing:
        sys.exit(f"seed images missing (run tests/fixtures/generate.sh and tests/fixtures/carve/generate.sh as root): {missing}")
    idx = [args.only] if args.only is not None else range(args.start, args.start + args.cases)
    log = open(args.log or os.path.join(args.work, f"log-{args.kind}-{args.seed}.jsonl"), "a")
    t0 = time.time()
    with ThreadPoolExecutor(args.workers) as ex:
        def safe(i):
            try:
                return run_case(args, args.kind, i)
            except Exception as e:  # a driver bug must not end the campaign
                return {"kind": args.kind, "i": i, "seed": "?", "family": "?", "desc": f"driver error: {e!r}", "extra": [], "results": []}
        for rec in ex.map(safe, idx):
            log.write(json.dumps(rec) + "\n"); log.flush()
            fl = rec["extra"] + [f"{r['cmd']}:{'/'.join(r['fails'])}" for r in rec["results"] if r["fails"]]
            print(f"{rec['i']:5d} {rec['seed']:15s} {rec['family']:7s} {' '.join(str(r['rc']) for r in rec['results'])} "
                  f"{max([r['rss_kb'] for r in rec['results']] or [0]) // 1024}M {sum(r['secs'] for r in rec['results']):.1f}s "
                  f"{'FAIL ' + ' '.join(fl) if fl else ''} | {rec['desc'][:120]}", flush=True)
    print(f"done in {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
