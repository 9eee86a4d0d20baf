// SPDX-License-Identifier: MIT
using System.Diagnostics;
using VRescue.Guard.Alerts;
using VRescue.Guard.Run;

namespace VRescue.Guard.Channels;

/// <summary>
/// Mail through a sendmail-compatible program: <c>COMMAND -t -i</c> with the message on stdin (-t: recipients from
/// the headers; -i: a lone "." does not end the message). Exit 0 is success (sysexits otherwise). Postfix's sendmail
/// queues under /var/spool, so prefer the SMTP channel when /var may be the failed filesystem (brief §5.1).
/// </summary>
public sealed class SendmailChannel(GuardChannelConfig config, TimeSpan timeout) : IAlertChannel
{
    public string Name => config.Name ?? "sendmail";

    public Task DeliverAsync(GuardAlert alert, CancellationToken cancel) => AlertChannels.Guard(Name, async () =>
    {
        var psi = new ProcessStartInfo(config.Command)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        psi.ArgumentList.Add("-t");
        psi.ArgumentList.Add("-i");
        using var p = await StartAsync(psi, cancel).ConfigureAwait(false);
        var stdout = p.StandardOutput.ReadToEndAsync(cancel);
        var stderr = p.StandardError.ReadToEndAsync(cancel);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        deadline.CancelAfter(timeout);
        try
        {
            // sendmail reads LF or CRLF; LF is what local MTAs expect on stdin.
            await p.StandardInput.WriteAsync(AlertText.Mail(alert, config.From!, config.To, config.SubjectPrefix).Replace("\r\n", "\n", StringComparison.Ordinal).AsMemory(), deadline.Token).ConfigureAwait(false);
            p.StandardInput.Close();
            await p.WaitForExitAsync(deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{config.Command} did not finish within {timeout.TotalSeconds} s");
        }

        await Task.WhenAll(stdout, stderr).ConfigureAwait(false);
        if (p.ExitCode != 0)
        {
            throw new IOException($"{config.Command} -t -i exited {p.ExitCode}: {AlertText.OneLine(stderr.Result.Trim())}");
        }
    });

    /// <summary>
    /// execve(2) fails with ETXTBSY while any process holds the program open for writing, which includes a child
    /// forked elsewhere in this process in the moment between fork and exec (a package upgrade replacing sendmail
    /// does the same). That lasts microseconds, so a few short retries are enough.
    /// </summary>
    private static async Task<Process> StartAsync(ProcessStartInfo psi, CancellationToken cancel)
    {
        const int TextFileBusy = 26; // ETXTBSY, asm-generic/errno-base.h
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return Process.Start(psi) ?? throw new IOException($"{psi.FileName} did not start");
            }
            catch (System.ComponentModel.Win32Exception e) when (e.NativeErrorCode == TextFileBusy && attempt < 5)
            {
                await Task.Delay(20 * attempt, cancel).ConfigureAwait(false);
            }
        }
    }
}
