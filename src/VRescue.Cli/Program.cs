// SPDX-License-Identifier: MIT
using VRescue.Cli;

return await VRescueApp.RunAsync(args, Console.Out, Console.Error);
