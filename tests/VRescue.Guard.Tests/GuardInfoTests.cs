// SPDX-License-Identifier: MIT
using VRescue.Guard;

namespace VRescue.Guard.Tests;

public class GuardInfoTests
{
    [Fact]
    public void Guard_project_builds_and_is_marked_unimplemented() =>
        Assert.Equal("not yet implemented", GuardInfo.Status);
}
