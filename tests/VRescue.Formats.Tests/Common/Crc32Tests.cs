// SPDX-License-Identifier: MIT
using System.Text;
using VRescue.Formats.Common;

namespace VRescue.Formats.Tests.Common;

public class Crc32Tests
{
    [Fact]
    public void Ieee_check_value_matches_the_standard() =>
        Assert.Equal(0xCBF43926u, Crc32.Ieee(Encoding.ASCII.GetBytes("123456789")));

    [Fact]
    public void Lvm_register_with_initial_F597A6CF_matches_lvm2_test_vectors()
    {
        // lvm2 lib/misc/crc.c INITIAL_CRC; vectors from research/lvm2-format.md section 3 (pvck output).
        Assert.Equal(0x4991CF02u, Crc32.Update(0xF597A6CF, Encoding.ASCII.GetBytes("123456789")));
        Assert.Equal(0x02C81F10u, Crc32.Update(0xF597A6CF, new byte[492]));
    }
}
