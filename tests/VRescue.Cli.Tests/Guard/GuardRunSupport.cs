// SPDX-License-Identifier: MIT
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace VRescue.Cli.Tests.Guard;

/// <summary>Real receivers for `guard run` tests: aiosmtpd on loopback, an HttpListener webhook; free ports only.</summary>
internal static class GuardRunSupport
{
    /// <summary>A port nobody listens on right now (bind 0, read, release).</summary>
    public static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        var port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    /// <summary>Debian's python3-aiosmtpd, whatever python3 comes first on PATH.</summary>
    public const string Python = "/usr/bin/python3";

    /// <summary>
    /// Starts `python3 -m aiosmtpd` with the Mailbox handler writing each message into MAILDIR/new; killed by the
    /// scratch's dispose. Returns the maildir.
    /// </summary>
    public static string StartSmtp(KernelScratch s, int port, string name = "maildir")
    {
        var maildir = s.PathOf(name);
        var p = s.Start(Python, "-m", "aiosmtpd", "-n", "-l", $"127.0.0.1:{port}", "-c", "aiosmtpd.handlers.Mailbox", maildir);
        s.OnDispose(() => p.Kill(entireProcessTree: true)); // runs before Start's undo, which would wait 5 s for an exit
        Assert.True(KernelScratch.WaitFor(() =>
        {
            try
            {
                using var c = new TcpClient();
                c.Connect(IPAddress.Loopback, port);
                return true;
            }
            catch (SocketException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(15)), $"aiosmtpd did not listen on {port} (apt-get install python3-aiosmtpd)");
        return maildir;
    }

    public sealed record Mail(IReadOnlyList<string> Headers, string Body)
    {
        public string? Header(string name) => Headers.FirstOrDefault(h => h.StartsWith(name + ": ", StringComparison.OrdinalIgnoreCase))?[(name.Length + 2)..];
    }

    /// <summary>Messages aiosmtpd stored, oldest first; the base64 body decoded.</summary>
    public static List<Mail> Received(string maildir)
    {
        var dir = Path.Combine(maildir, "new");
        if (!Directory.Exists(dir))
        {
            return [];
        }

        return Directory.GetFiles(dir).OrderBy(File.GetLastWriteTimeUtc).ThenBy(f => f, StringComparer.Ordinal).Select(f =>
        {
            var text = File.ReadAllText(f).Replace("\r\n", "\n", StringComparison.Ordinal);
            var split = text.IndexOf("\n\n", StringComparison.Ordinal);
            var headers = text[..split].Split('\n');
            var body = Encoding.UTF8.GetString(Convert.FromBase64String(text[(split + 2)..].Replace("\n", "", StringComparison.Ordinal)));
            return new Mail(headers, body);
        }).ToList();
    }

    /// <summary>A webhook receiver on a free loopback port that answers 204 and keeps the bodies.</summary>
    public sealed class WebhookSink : IDisposable
    {
        private readonly HttpListener _listener = new();

        public WebhookSink()
        {
            Url = $"http://127.0.0.1:{FreePort()}/hook/";
            _listener.Prefixes.Add(Url);
            _listener.Start();
            _ = Task.Run(Loop);
        }

        public string Url { get; }
        public ConcurrentQueue<string> Bodies { get; } = new();

        private async Task Loop()
        {
            while (_listener.IsListening)
            {
                try
                {
                    var ctx = await _listener.GetContextAsync();
                    using (var r = new StreamReader(ctx.Request.InputStream))
                    {
                        Bodies.Enqueue(await r.ReadToEndAsync());
                    }

                    ctx.Response.StatusCode = 204;
                    ctx.Response.Close();
                }
                catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
                {
                    return;
                }
            }
        }

        public void Dispose() => _listener.Close();
    }

    /// <summary>A run configuration watching only <paramref name="mountPoint"/> with an empty fstab, state and metrics in the scratch.</summary>
    public static string Config(KernelScratch s, string mountPoint, string channelsYaml, string extra = "")
    {
        var fstab = s.PathOf("fstab");
        File.WriteAllText(fstab, "");
        Directory.CreateDirectory(s.PathOf("prom"));
        var path = s.PathOf("guard.yaml");
        File.WriteAllText(path, $$"""
            interval: 5s
            hostname: guest-test
            mounts: ["{{mountPoint}}"]
            state_dirs: ["{{s.PathOf("state")}}"]
            inputs: { fstab: "{{fstab}}" }
            retry: { initial: 0s, max: 0s }
            metrics: { textfile_dir: "{{s.PathOf("prom")}}" }
            {{extra}}
            channels:
            {{channelsYaml}}
            """);
        return path;
    }

    public static string Smtp(int port) => $"  - {{type: smtp, host: 127.0.0.1, port: {port}, tls: none, from: guard@guest-test.example, to: [ops@example.com], timeout: 10s}}";

    public static string Metrics(KernelScratch s) => File.ReadAllText(s.PathOf("prom/vrescue_guard.prom"));

    public static Cli.Result Once(string config)
    {
        var r = Cli.Run("guard", "run", "--once", "--config", config);
        Assert.True(r.ExitCode == 0, $"guard run --once exited {r.ExitCode}: {r.Stdout}{r.Stderr}");
        return r;
    }
}
