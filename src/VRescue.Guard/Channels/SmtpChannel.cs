// SPDX-License-Identifier: MIT
using System.Globalization;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using VRescue.Guard.Alerts;
using VRescue.Guard.Run;

namespace VRescue.Guard.Channels;

/// <summary>
/// Mail through an SMTP relay, by a small client written here (RFC 5321): EHLO, STARTTLS when offered (RFC 3207;
/// <c>tls: auto</c>) or required (<c>starttls</c>), implicit TLS (<c>implicit</c>, RFC 8314, port 465), AUTH PLAIN or
/// LOGIN (RFC 4954/4616) only over TLS unless <c>allow_plaintext_auth</c>, DATA with dot-stuffing.
/// Direct SMTP rather than sendmail: a local MTA queues under /var, which may be the filesystem that failed.
/// </summary>
public sealed class SmtpChannel(GuardChannelConfig config, TimeSpan timeout) : IAlertChannel
{
    public string Name => config.Name ?? "smtp";

    public Task DeliverAsync(GuardAlert alert, CancellationToken cancel) =>
        AlertChannels.Guard(Name, () => SendAsync(AlertText.Mail(alert, config.From!, config.To, config.SubjectPrefix), cancel));

    private async Task SendAsync(string message, CancellationToken cancel)
    {
        try
        {
            await ExchangeAsync(message, cancel).ConfigureAwait(false);
        }
        catch (OperationCanceledException e) when (!cancel.IsCancellationRequested)
        {
            // The deadline, not a shutdown: socket and TLS reads report it as OperationCanceledException, which is no
            // delivery failure to the daemon and would escape the cycle instead of spooling the alert.
            throw new TimeoutException($"{config.Host}:{config.Port}: no complete SMTP exchange within {timeout.TotalSeconds} s", e);
        }
    }

    private async Task ExchangeAsync(string message, CancellationToken cancel)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        deadline.CancelAfter(timeout);
        var ct = deadline.Token;
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(config.Host!, config.Port, ct).ConfigureAwait(false);
        Stream stream = tcp.GetStream();
        var tls = false;
        if (config.Tls == "implicit")
        {
            stream = await StartTls(stream, ct).ConfigureAwait(false);
            tls = true;
        }

        var conn = new SmtpLines(stream);
        await conn.Expect(220, ct).ConfigureAwait(false);
        var helo = config.Helo ?? HeloName();
        var ext = await conn.Command($"EHLO {helo}", 250, ct).ConfigureAwait(false);
        var offersTls = ext.Any(l => l.Equals("STARTTLS", StringComparison.OrdinalIgnoreCase));
        if (!tls && (config.Tls == "starttls" || (config.Tls == "auto" && offersTls)))
        {
            if (!offersTls)
            {
                throw new IOException($"{config.Host}:{config.Port} does not offer STARTTLS and tls is 'starttls'");
            }

            await conn.Command("STARTTLS", 220, ct).ConfigureAwait(false);
            conn = new SmtpLines(await StartTls(stream, ct).ConfigureAwait(false));
            tls = true;
            ext = await conn.Command($"EHLO {helo}", 250, ct).ConfigureAwait(false);
        }

        if (config.Username is { } user)
        {
            if (!tls && !config.AllowPlaintextAuth)
            {
                throw new IOException($"{config.Host}:{config.Port}: refusing AUTH without TLS (set allow_plaintext_auth for a trusted local relay)");
            }

            var password = config.Password ?? File.ReadAllText(config.PasswordFile!).TrimEnd('\r', '\n');
            var mechanisms = ext.Where(l => l.StartsWith("AUTH", StringComparison.OrdinalIgnoreCase)).SelectMany(l => l.Split(' ', '=').Skip(1)).ToHashSet(StringComparer.OrdinalIgnoreCase);
            if (mechanisms.Contains("PLAIN"))
            {
                await conn.Command("AUTH PLAIN " + B64($"\0{user}\0{password}"), 235, ct, secret: true).ConfigureAwait(false);
            }
            else if (mechanisms.Contains("LOGIN"))
            {
                await conn.Command("AUTH LOGIN", 334, ct).ConfigureAwait(false);
                await conn.Command(B64(user), 334, ct, secret: true).ConfigureAwait(false);
                await conn.Command(B64(password), 235, ct, secret: true).ConfigureAwait(false);
            }
            else
            {
                throw new IOException($"{config.Host}:{config.Port} offers no AUTH PLAIN or LOGIN");
            }
        }

        await conn.Command($"MAIL FROM:<{config.From}>", 250, ct).ConfigureAwait(false);
        foreach (var to in config.To)
        {
            await conn.Command($"RCPT TO:<{to}>", 250, ct).ConfigureAwait(false);
        }

        await conn.Command("DATA", 354, ct).ConfigureAwait(false);
        await conn.WriteRaw(DotStuff(message) + ".\r\n", ct).ConfigureAwait(false);
        await conn.Expect(250, ct).ConfigureAwait(false);
        try
        {
            await conn.Command("QUIT", 221, ct).ConfigureAwait(false);
        }
        catch (IOException)
        {
            // The message was accepted at "250" after DATA; a relay that drops the line at QUIT changes nothing.
        }
    }

    private async Task<Stream> StartTls(Stream inner, CancellationToken ct)
    {
        var ssl = new SslStream(inner, leaveInnerStreamOpen: false);
        var options = new SslClientAuthenticationOptions { TargetHost = config.Host };
        if (!config.TlsVerify)
        {
            options.RemoteCertificateValidationCallback = (_, _, _, _) => true;
        }
        else if (config.CaFile is { } caFile)
        {
            // Only these CAs, instead of the system store; the host name is still checked against the certificate.
            // No revocation check: a private CA or a self-signed relay has no reachable CRL or OCSP responder.
            var policy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust, RevocationMode = X509RevocationMode.NoCheck };
            policy.CustomTrustStore.AddRange(LoadCaFile(caFile));
            options.CertificateChainPolicy = policy;
        }

        await ssl.AuthenticateAsClientAsync(options, ct).ConfigureAwait(false);
        return ssl;
    }

    /// <summary>The certificates of a PEM <c>ca_file</c>; throws IOException when there are none.</summary>
    private static X509Certificate2Collection LoadCaFile(string path)
    {
        var certs = new X509Certificate2Collection();
        try
        {
            certs.ImportFromPemFile(path);
        }
        catch (CryptographicException e)
        {
            throw new IOException($"ca_file {path}: {e.Message}", e);
        }

        return certs.Count > 0 ? certs : throw new IOException($"ca_file {path}: no PEM certificate in it");
    }

    /// <summary>Why <paramref name="path"/> cannot be used as <c>ca_file</c>, or null when it can.</summary>
    public static string? CaFileProblem(string path)
    {
        try
        {
            _ = LoadCaFile(path);
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return e.Message.StartsWith("ca_file ", StringComparison.Ordinal) ? e.Message["ca_file ".Length..] : $"{path}: {e.Message}";
        }
    }

    /// <summary>RFC 5321 §4.5.2: a line starting with "." gets another; the message already has CRLF line ends.</summary>
    public static string DotStuff(string message)
    {
        var text = message.EndsWith("\r\n", StringComparison.Ordinal) ? message : message + "\r\n";
        return (text.StartsWith('.') ? "." : "") + text.Replace("\r\n.", "\r\n..", StringComparison.Ordinal);
    }

    private static string B64(string s) => Convert.ToBase64String(Encoding.UTF8.GetBytes(s));

    private static string HeloName()
    {
        var h = new string(Environment.MachineName.Where(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-').ToArray());
        return h.Length == 0 ? "localhost" : h;
    }

    /// <summary>Reply-line reader and command writer over one stream (replaced after STARTTLS).</summary>
    private sealed class SmtpLines(Stream stream)
    {
        private readonly byte[] _buffer = new byte[4096];
        private int _start;
        private int _end;

        public async Task<IReadOnlyList<string>> Command(string line, int expected, CancellationToken ct, bool secret = false)
        {
            await WriteRaw(line + "\r\n", ct).ConfigureAwait(false);
            return await Expect(expected, ct, secret ? line.Split(' ')[0] + " ..." : line).ConfigureAwait(false);
        }

        public async Task WriteRaw(string text, CancellationToken ct)
        {
            await stream.WriteAsync(Encoding.UTF8.GetBytes(text), ct).ConfigureAwait(false);
            await stream.FlushAsync(ct).ConfigureAwait(false);
        }

        /// <summary>Reads one (multi-line) reply; returns the text after the code of every line but the greeting's first.</summary>
        public async Task<IReadOnlyList<string>> Expect(int expected, CancellationToken ct, string? after = null)
        {
            var lines = new List<string>();
            while (true)
            {
                var line = await ReadLine(ct).ConfigureAwait(false);
                if (line.Length < 3 || !int.TryParse(line.AsSpan(0, 3), NumberStyles.None, CultureInfo.InvariantCulture, out var code))
                {
                    throw new IOException($"bad SMTP reply '{line}'");
                }

                lines.Add(line.Length > 4 ? line[4..] : "");
                if (line.Length == 3 || line[3] != '-')
                {
                    if (code != expected)
                    {
                        throw new IOException($"SMTP {(after is null ? "server" : after)}: {line}");
                    }

                    return lines.Skip(1).ToList();
                }
            }
        }

        private async Task<string> ReadLine(CancellationToken ct)
        {
            var sb = new StringBuilder();
            while (true)
            {
                if (_start == _end)
                {
                    _start = 0;
                    _end = await stream.ReadAsync(_buffer, ct).ConfigureAwait(false);
                    if (_end == 0)
                    {
                        throw new IOException("SMTP server closed the connection");
                    }
                }

                var nl = Array.IndexOf(_buffer, (byte)'\n', _start, _end - _start);
                if (nl < 0)
                {
                    sb.Append(Encoding.UTF8.GetString(_buffer, _start, _end - _start));
                    _start = _end;
                    if (sb.Length > 4096)
                    {
                        throw new IOException("SMTP reply line too long");
                    }

                    continue;
                }

                sb.Append(Encoding.UTF8.GetString(_buffer, _start, nl - _start));
                _start = nl + 1;
                return sb.ToString().TrimEnd('\r');
            }
        }
    }
}
