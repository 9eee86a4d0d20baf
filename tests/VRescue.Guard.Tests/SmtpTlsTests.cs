// SPDX-License-Identifier: MIT
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using VRescue.Formats.Common;
using VRescue.Guard.Channels;
using VRescue.Guard.Check;
using VRescue.Guard.Run;
using VRescue.TestSupport;
using static VRescue.Guard.Tests.GuardRunTestData;

namespace VRescue.Guard.Tests;

/// <summary>
/// The SMTP channel against a real relay: aiosmtpd's Controller (smtp_tls_server.py, Debian python3-aiosmtpd) with a
/// self-signed certificate made by openssl per test, STARTTLS required, AUTH only over TLS, one user. Channels are
/// built from YAML through GuardConfigLoader and AlertChannels.Create, as `guard run` builds them.
/// </summary>
public sealed class SmtpTlsTests : IDisposable
{
    private const string Python = "/usr/bin/python3";
    private const string User = "vrescue";
    private const string Secret = "s3cret pass";

    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("vrescue-guard-smtptls-");
    private readonly List<Relay> _relays = [];
    private string? _cert;

    public void Dispose()
    {
        foreach (var r in _relays)
        {
            r.Dispose();
        }

        _dir.Delete(recursive: true);
    }

    /// <summary>The relay's certificate (CN=localhost, no SAN), which is also the ca_file that trusts it.</summary>
    private string Cert
    {
        get
        {
            if (_cert is null)
            {
                var cert = Path.Combine(_dir.FullName, "cert.pem");
                Repo.Run("openssl", $"req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost -keyout \"{Path.Combine(_dir.FullName, "key.pem")}\" -out \"{cert}\"");
                _cert = cert;
            }

            return _cert;
        }
    }

    private sealed class Relay(Process process, int port, string output) : IDisposable
    {
        public int Port => port;

        public List<(string Eml, JsonElement Meta)> Mails()
        {
            var dir = Path.Combine(output, "mail");
            return Directory.GetFiles(dir, "*.eml").OrderBy(f => int.Parse(Path.GetFileNameWithoutExtension(f), System.Globalization.CultureInfo.InvariantCulture))
                .Select(f => (File.ReadAllText(f), JsonDocument.Parse(File.ReadAllText(Path.ChangeExtension(f, ".json"))).RootElement.Clone())).ToList();
        }

        /// <summary>Every AUTH attempt the relay saw: "MECHANISM USER ok|fail tls|clear".</summary>
        public string[] AuthLog()
        {
            var path = Path.Combine(output, "auth.log");
            return File.Exists(path) ? File.ReadAllLines(path) : [];
        }

        public void Dispose()
        {
            try
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit();
            }
            catch (InvalidOperationException)
            {
                // already gone
            }

            process.Dispose();
        }
    }

    private static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        var port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    /// <summary>Starts the relay on a free port and returns once it printed "ready" (a lost port race retries on another).</summary>
    private Relay Start(string mode, params string[] exclude)
    {
        var script = Path.Combine(Repo.Root, "tests", "VRescue.Guard.Tests", "smtp_tls_server.py");
        var errors = "";
        for (var attempt = 0; attempt < 3; attempt++)
        {
            var port = FreePort();
            var output = Path.Combine(_dir.FullName, $"relay-{_relays.Count}-{attempt}");
            var psi = new ProcessStartInfo(Python)
            {
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (var arg in (string[])["-u", script, "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--cert", Cert,
                         "--key", Path.Combine(_dir.FullName, "key.pem"), "--out", output, "--mode", mode, "--user", User, "--password", Secret])
            {
                psi.ArgumentList.Add(arg);
            }

            foreach (var m in exclude)
            {
                psi.ArgumentList.Add("--exclude");
                psi.ArgumentList.Add(m);
            }

            var p = Process.Start(psi)!;
            var stderr = p.StandardError.ReadToEndAsync();
            var relay = new Relay(p, port, output);
            _relays.Add(relay);
            if (p.StandardOutput.ReadLine() == "ready")
            {
                return relay;
            }

            relay.Dispose();
            errors += stderr.Result;
        }

        Assert.Fail($"aiosmtpd relay ({mode}) did not start (apt-get install python3-aiosmtpd): {errors}");
        return null!;
    }

    /// <summary>One smtp channel from YAML, validated by GuardConfigLoader and built by AlertChannels.Create.</summary>
    private GuardSettings Settings(string channelKeys, string timeout = "60s") => GuardConfigLoader.Parse($$"""
        hostname: guest1
        state_dirs: ["{{Path.Combine(_dir.FullName, "state")}}"]
        retry: { initial: 0s, max: 0s }
        channels:
          - {type: smtp, name: mail, from: guard@guest1.example, to: [ops@example.com], timeout: {{timeout}}, {{channelKeys}}}
        """, "guard.yaml");

    private IAlertChannel Channel(string channelKeys) => AlertChannels.Create(Assert.Single(Settings(channelKeys).Channels));

    private string Auth(string password = Secret) => $"username: {User}, password: \"{password}\"";

    private static void AssertDelivered(Relay relay, bool tls)
    {
        var (eml, meta) = Assert.Single(relay.Mails());
        Assert.Equal(tls, meta.GetProperty("tls").GetBoolean());
        Assert.Equal(User, meta.GetProperty("user").GetString());
        Assert.Equal("guard@guest1.example", meta.GetProperty("from").GetString());
        Assert.Equal("ops@example.com", Assert.Single(meta.GetProperty("to").EnumerateArray()).GetString());
        Assert.Contains("X-VRescue-Guard-Alert: 0123456789abcdef problem critical", eml, StringComparison.Ordinal);
    }

    [RealFact("openssl", Python)]
    public async Task Starttls_then_auth_plain_delivers_with_the_self_signed_certificate_as_ca_file()
    {
        var relay = Start("starttls");
        await Channel($"host: localhost, port: {relay.Port}, tls: starttls, ca_file: \"{Cert}\", {Auth()}").DeliverAsync(Alert(), default);
        AssertDelivered(relay, tls: true);
        Assert.Equal([$"PLAIN {User} ok tls"], relay.AuthLog());
    }

    [RealFact("openssl", Python)]
    public async Task Tls_auto_upgrades_when_starttls_is_offered_and_uses_auth_login_when_plain_is_not()
    {
        var relay = Start("starttls", "PLAIN");
        await Channel($"host: localhost, port: {relay.Port}, tls: auto, ca_file: \"{Cert}\", {Auth()}").DeliverAsync(Alert(), default);
        AssertDelivered(relay, tls: true);
        Assert.Equal([$"LOGIN {User} ok tls"], relay.AuthLog());
    }

    [RealFact("openssl", Python)]
    public async Task Implicit_tls_delivers_with_auth_plain_and_auth_login()
    {
        var relay = Start("implicit");
        await Channel($"host: localhost, port: {relay.Port}, tls: implicit, ca_file: \"{Cert}\", {Auth()}").DeliverAsync(Alert(), default);
        AssertDelivered(relay, tls: true);
        Assert.Equal([$"PLAIN {User} ok tls"], relay.AuthLog());

        var login = Start("implicit", "PLAIN");
        await Channel($"host: localhost, port: {login.Port}, tls: implicit, ca_file: \"{Cert}\", {Auth()}").DeliverAsync(Alert(), default);
        AssertDelivered(login, tls: true);
        Assert.Equal([$"LOGIN {User} ok tls"], login.AuthLog());
    }

    [RealFact("openssl", Python)]
    public async Task Wrong_password_is_a_delivery_failure_the_alert_is_spooled_and_delivered_once_the_password_is_fixed()
    {
        var relay = Start("starttls", "PLAIN"); // AUTH LOGIN: the password goes in its own step
        var report = Report(Mount("/srv/db", MountState.EmergencyReadOnly, Severity.Error, ext4Errors: 1));
        var t0 = new DateTimeOffset(2026, 11, 22, 10, 0, 0, TimeSpan.Zero);
        var log = new StringWriter();
        var keys = $"host: localhost, port: {relay.Port}, tls: starttls, ca_file: \"{Cert}\", ";
        var wrong = Settings(keys + Auth("wrong"));
        string id;
        await using (var d = new GuardDaemon(wrong, [.. wrong.Channels.Select(AlertChannels.Create)], log, () => report))
        {
            var r = await d.CycleAsync(t0, default);
            id = Assert.Single(r.Alerts).Id;
            Assert.Equal(0, r.Delivered);
            Assert.Equal(1, r.Spooled);
            Assert.EndsWith($"{id}.mail.json", Assert.Single(Directory.GetFiles(Path.Combine(_dir.FullName, "state", "spool"))), StringComparison.Ordinal);
        }

        Assert.Contains("535", log.ToString(), StringComparison.Ordinal); // the relay's "Authentication credentials invalid"
        Assert.DoesNotContain("wrong", log.ToString(), StringComparison.Ordinal);
        Assert.Equal([$"LOGIN {User} fail tls"], relay.AuthLog());
        Assert.Empty(relay.Mails());

        // The operator fixes the password and restarts: the spooled alert goes out, once.
        var right = Settings(keys + Auth());
        await using (var d = new GuardDaemon(right, [.. right.Channels.Select(AlertChannels.Create)], log, () => report))
        {
            var r = await d.CycleAsync(t0.AddMinutes(1), default);
            Assert.Empty(r.Alerts);
            Assert.Equal(1, r.Delivered);
            Assert.Empty(Directory.GetFiles(Path.Combine(_dir.FullName, "state", "spool")));
            Assert.Equal(0, (await d.CycleAsync(t0.AddMinutes(2), default)).Delivered);
        }

        var (eml, meta) = Assert.Single(relay.Mails());
        Assert.True(meta.GetProperty("tls").GetBoolean());
        Assert.Contains($"X-VRescue-Guard-Alert: {id} problem critical", eml, StringComparison.Ordinal);
        Assert.Equal([$"LOGIN {User} fail tls", $"LOGIN {User} ok tls"], relay.AuthLog());
    }

    [RealFact("openssl", Python)]
    public async Task Credentials_are_never_sent_in_clear_unless_allow_plaintext_auth()
    {
        var relay = Start("plain"); // offers AUTH without TLS and no STARTTLS
        foreach (var tls in (string[])["none", "auto"])
        {
            var e = await Assert.ThrowsAsync<AlertDeliveryException>(() => Channel($"host: 127.0.0.1, port: {relay.Port}, tls: {tls}, {Auth()}").DeliverAsync(Alert(), default));
            Assert.Contains("refusing AUTH without TLS", e.Message, StringComparison.Ordinal);
        }

        var starttls = await Assert.ThrowsAsync<AlertDeliveryException>(() => Channel($"host: 127.0.0.1, port: {relay.Port}, tls: starttls, {Auth()}").DeliverAsync(Alert(), default));
        Assert.Contains("does not offer STARTTLS", starttls.Message, StringComparison.Ordinal);
        Assert.Empty(relay.AuthLog());
        Assert.Empty(relay.Mails());

        await Channel($"host: 127.0.0.1, port: {relay.Port}, tls: none, allow_plaintext_auth: true, {Auth()}").DeliverAsync(Alert(), default);
        AssertDelivered(relay, tls: false);
        Assert.Equal([$"PLAIN {User} ok clear"], relay.AuthLog());
    }

    [RealFact("openssl", Python)]
    public async Task Certificate_is_verified_by_default_ca_file_trusts_it_for_its_name_and_tls_verify_false_skips_the_check()
    {
        var relay = Start("starttls");

        // System store only: a self-signed relay is refused before any credential is sent.
        var untrusted = await Assert.ThrowsAsync<AlertDeliveryException>(() => Channel($"host: localhost, port: {relay.Port}, tls: starttls, {Auth()}").DeliverAsync(Alert(), default));
        Assert.Contains("certificate", untrusted.Message, StringComparison.OrdinalIgnoreCase);

        // ca_file trusts the certificate, but its name (CN=localhost) must still match the host.
        var mismatch = await Assert.ThrowsAsync<AlertDeliveryException>(() => Channel($"host: 127.0.0.1, port: {relay.Port}, tls: starttls, ca_file: \"{Cert}\", {Auth()}").DeliverAsync(Alert(), default));
        Assert.Contains("certificate", mismatch.Message, StringComparison.OrdinalIgnoreCase);

        // Another CA in ca_file: still refused.
        var other = Path.Combine(_dir.FullName, "other.pem");
        Repo.Run("openssl", $"req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost -keyout \"{Path.Combine(_dir.FullName, "other.key")}\" -out \"{other}\"");
        var wrongCa = await Assert.ThrowsAsync<AlertDeliveryException>(() => Channel($"host: localhost, port: {relay.Port}, tls: starttls, ca_file: \"{other}\", {Auth()}").DeliverAsync(Alert(), default));
        Assert.Contains("certificate", wrongCa.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Empty(relay.AuthLog());
        Assert.Empty(relay.Mails());

        await Channel($"host: 127.0.0.1, port: {relay.Port}, tls: starttls, tls_verify: false, {Auth()}").DeliverAsync(Alert(), default);
        AssertDelivered(relay, tls: true);
    }

    [RealFact("openssl")]
    public void Ca_file_is_validated_when_the_configuration_is_loaded()
    {
        var garbage = Path.Combine(_dir.FullName, "garbage.pem");
        File.WriteAllText(garbage, "not a certificate\n");
        foreach (var (keys, message) in (ValueTuple<string, string>[])[
                     ($"ca_file: \"{Path.Combine(_dir.FullName, "missing.pem")}\"", "missing.pem"),
                     ($"ca_file: \"{garbage}\"", "no PEM certificate"),
                     ($"ca_file: \"{Cert}\", tls: none", "'ca_file' needs TLS"),
                     ($"ca_file: \"{Cert}\", tls_verify: false", "contradict"),
                 ])
        {
            var e = Assert.Throws<GuardConfigException>(() => Settings($"host: localhost, {keys}"));
            Assert.Contains("channel 'mail'", e.Message, StringComparison.Ordinal);
            Assert.Contains(message, e.Message, StringComparison.Ordinal);
        }

        Assert.Equal(Cert, Assert.Single(Settings($"host: localhost, ca_file: \"{Cert}\"").Channels).CaFile);
    }

    [Theory]
    [InlineData("none")]
    [InlineData("implicit")]
    public async Task Relay_that_accepts_and_never_answers_is_a_delivery_failure_after_the_timeout(string tls)
    {
        // Before the fix the deadline surfaced as OperationCanceledException, escaped the daemon's cycle and lost the alert.
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        try
        {
            var port = ((IPEndPoint)listener.LocalEndpoint).Port;
            var accepted = listener.AcceptTcpClientAsync();
            var settings = Settings($"host: 127.0.0.1, port: {port}, tls: {tls}", timeout: "1s");
            var channel = AlertChannels.Create(Assert.Single(settings.Channels));
            var e = await Assert.ThrowsAsync<AlertDeliveryException>(() => channel.DeliverAsync(Alert(), default));
            Assert.Contains("no complete SMTP exchange within 1 s", e.Message, StringComparison.Ordinal);
            (await accepted).Dispose();
        }
        finally
        {
            listener.Stop();
        }
    }
}
