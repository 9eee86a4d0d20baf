// SPDX-License-Identifier: MIT
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using VRescue.Guard.Channels;
using VRescue.Guard.Run;
using static VRescue.Guard.Tests.GuardRunTestData;

namespace VRescue.Guard.Tests;

/// <summary>Webhook against a real HttpListener, syslog against a real Unix datagram socket, sendmail as a real program.</summary>
public sealed class ChannelTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("vrescue-guard-channels-");

    public void Dispose() => _dir.Delete(recursive: true);

    private static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        var port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    [Fact]
    public async Task Webhook_posts_the_alert_as_json_with_an_idempotency_key()
    {
        var port = FreePort();
        using var listener = new HttpListener();
        listener.Prefixes.Add($"http://127.0.0.1:{port}/hook/");
        listener.Start();
        var channel = AlertChannels.Create(new GuardChannelConfig { Type = "webhook", Name = "hook", Url = $"http://127.0.0.1:{port}/hook/", Headers = { ["X-Token"] = "t1" } });
        var received = Task.Run(async () =>
        {
            var ctx = await listener.GetContextAsync();
            using var r = new StreamReader(ctx.Request.InputStream);
            var body = await r.ReadToEndAsync();
            var result = (ctx.Request.HttpMethod, ctx.Request.ContentType, Key: ctx.Request.Headers["Idempotency-Key"], Token: ctx.Request.Headers["X-Token"], body);
            ctx.Response.StatusCode = 204;
            ctx.Response.Close();
            return result;
        });
        await channel.DeliverAsync(Alert("/srv/db \"x\"\n"), default);
        var got = await received;
        Assert.Equal("POST", got.HttpMethod);
        Assert.StartsWith("application/json", got.ContentType, StringComparison.Ordinal);
        Assert.Equal("0123456789abcdef", got.Key);
        Assert.Equal("t1", got.Token);
        var json = JsonDocument.Parse(got.body).RootElement;
        Assert.Equal("0123456789abcdef", json.GetProperty("id").GetString());
        Assert.Equal("problem", json.GetProperty("kind").GetString());
        Assert.Equal("emergency-read-only", json.GetProperty("state").GetString());
        Assert.Equal("/srv/db \"x\"\n", json.GetProperty("mountPoint").GetString());
        Assert.Equal("loop7", json.GetProperty("device").GetString());
    }

    [Fact]
    public async Task Webhook_error_status_and_refused_connection_are_delivery_failures()
    {
        var port = FreePort();
        var refused = AlertChannels.Create(new GuardChannelConfig { Type = "webhook", Url = $"http://127.0.0.1:{port}/", Timeout = "5s" });
        await Assert.ThrowsAsync<AlertDeliveryException>(() => refused.DeliverAsync(Alert(), default));

        using var listener = new HttpListener();
        listener.Prefixes.Add($"http://127.0.0.1:{port}/");
        listener.Start();
        _ = Task.Run(async () =>
        {
            var ctx = await listener.GetContextAsync();
            ctx.Response.StatusCode = 503;
            ctx.Response.Close();
        });
        var e = await Assert.ThrowsAsync<AlertDeliveryException>(() => refused.DeliverAsync(Alert(), default));
        Assert.Contains("503", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Syslog_sends_one_rfc5424_datagram_to_the_socket()
    {
        var path = Path.Combine(_dir.FullName, "log");
        using var server = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        server.Bind(new UnixDomainSocketEndPoint(path));
        var channel = AlertChannels.Create(new GuardChannelConfig { Type = "syslog", Socket = path, Facility = "local3" });
        await channel.DeliverAsync(Alert("/mnt/x\r\nfake: line"), default);
        var buffer = new byte[65536];
        var n = server.Receive(buffer);
        var text = Encoding.UTF8.GetString(buffer, 0, n);
        Assert.Matches(@"^<154>1 2026-11-22T10:00:00\.000000Z guest1 vrescue-guard \d+ 0123456789abcdef - CRITICAL /mnt/x\\r\\nfake: line \(loop7\) emergency read-only \[alert 0123456789abcdef\] first error ", text);
        Assert.DoesNotContain('\n', text);
    }

    [Fact]
    public async Task Sendmail_gets_dash_t_dash_i_and_the_message_on_stdin()
    {
        var captured = Path.Combine(_dir.FullName, "captured");
        var script = Path.Combine(_dir.FullName, "sendmail");
        File.WriteAllText(script, $"#!/bin/sh\necho \"$@\" > '{captured}.args'\ncat > '{captured}'\n");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserExecute | UnixFileMode.UserWrite);
        }
        var channel = AlertChannels.Create(new GuardChannelConfig { Type = "sendmail", Command = script, From = "guard@example.com", To = ["ops@example.com"] });
        await channel.DeliverAsync(Alert("/mnt/x\nBcc: evil@example.com"), default);
        Assert.Equal("-t -i\n", File.ReadAllText(captured + ".args"));
        var mail = File.ReadAllText(captured);
        Assert.DoesNotContain('\r', mail);
        var headers = mail[..mail.IndexOf("\n\n", StringComparison.Ordinal)].Split('\n');
        Assert.Contains("To: ops@example.com", headers);
        Assert.DoesNotContain(headers, h => h.StartsWith("Bcc", StringComparison.Ordinal));

        var failing = Path.Combine(_dir.FullName, "sendmail-failing");
        File.WriteAllText(failing, "#!/bin/sh\ncat >/dev/null\necho 'queue dir read-only' >&2\nexit 75\n");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(failing, UnixFileMode.UserRead | UnixFileMode.UserExecute | UnixFileMode.UserWrite);
        }
        channel = AlertChannels.Create(new GuardChannelConfig { Type = "sendmail", Command = failing, From = "guard@example.com", To = ["ops@example.com"] });
        var e = await Assert.ThrowsAsync<AlertDeliveryException>(() => channel.DeliverAsync(Alert(), default));
        Assert.Contains("exited 75: queue dir read-only", e.Message, StringComparison.Ordinal);
    }
}
