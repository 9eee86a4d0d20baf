// SPDX-License-Identifier: MIT
using VRescue.Guard.Alerts;
using VRescue.Guard.Run;

namespace VRescue.Guard.Channels;

/// <summary>A way to reach a person. Delivery either completes or throws <see cref="AlertDeliveryException"/>.</summary>
public interface IAlertChannel
{
    /// <summary>Configured name (unique; spool entries are keyed by it).</summary>
    string Name { get; }

    Task DeliverAsync(GuardAlert alert, CancellationToken cancel);
}

/// <summary>A delivery failed; the alert goes to the spool and is retried.</summary>
public sealed class AlertDeliveryException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>Builds channels from configuration (an explicit list, no reflection).</summary>
public static class AlertChannels
{
    public static IAlertChannel Create(GuardChannelConfig c)
    {
        var timeout = GuardConfigLoader.Duration(c.Timeout, "timeout", c.Name ?? c.Type);
        return c.Type switch
        {
            "smtp" => new SmtpChannel(c, timeout),
            "sendmail" => new SendmailChannel(c, timeout),
            "webhook" => new WebhookChannel(c, timeout),
            "syslog" => new SyslogChannel(c),
            _ => throw new GuardConfigException($"unknown channel type '{c.Type}'"),
        };
    }

    /// <summary>Wraps the usual I/O failures of a channel as <see cref="AlertDeliveryException"/>.</summary>
    internal static async Task Guard(string name, Func<Task> deliver)
    {
        try
        {
            await deliver().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or HttpRequestException
            or TimeoutException or TaskCanceledException or UnauthorizedAccessException or System.ComponentModel.Win32Exception
            or System.Security.Authentication.AuthenticationException or InvalidOperationException)
        {
            throw new AlertDeliveryException($"{name}: {e.Message}", e);
        }
    }
}
