// SPDX-License-Identifier: MIT
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace VRescue.Guard.Metrics;

/// <summary>
/// A minimal HTTP/1.0-style server for <c>GET /metrics</c> (text format 0.0.4): one request per connection, head
/// capped at 8 KiB and 5 s, anything else 404/405. Enough for a Prometheus scrape without an ASP.NET dependency.
/// </summary>
public sealed class MetricsHttpServer : IAsyncDisposable
{
    private const int MaxHeadBytes = 8 * 1024;
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private volatile string _body = "";

    /// <summary>Starts listening on HOST:PORT (port 0 picks a free port; see <see cref="Port"/>).</summary>
    public MetricsHttpServer(string listen)
    {
        _listener = new TcpListener(ParseEndPoint(listen));
        _listener.Start();
        _loop = Task.Run(AcceptLoop);
    }

    /// <summary>The bound endpoint.</summary>
    public IPEndPoint EndPoint => (IPEndPoint)_listener.LocalEndpoint;

    public int Port => EndPoint.Port;

    /// <summary>Replaces what the next scrape gets.</summary>
    public void Update(string exposition) => _body = exposition;

    /// <summary>"127.0.0.1:9721", "[::1]:0", ":9721" (all addresses).</summary>
    public static IPEndPoint ParseEndPoint(string listen)
    {
        if (listen.StartsWith(':'))
        {
            listen = "0.0.0.0" + listen;
        }

        return IPEndPoint.TryParse(listen, out var ep) && listen.Contains(':', StringComparison.Ordinal)
            ? ep
            : throw new FormatException($"metrics listen address '{listen}' is not HOST:PORT");
    }

    private async Task AcceptLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            _ = Task.Run(() => Serve(client));
        }
    }

    private async Task Serve(TcpClient client)
    {
        using (client)
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token))
        {
            timeout.CancelAfter(TimeSpan.FromSeconds(5));
            try
            {
                var stream = client.GetStream();
                var head = new byte[MaxHeadBytes];
                var n = 0;
                while (n < head.Length && head.AsSpan(0, n).IndexOf("\r\n\r\n"u8) < 0)
                {
                    var read = await stream.ReadAsync(head.AsMemory(n), timeout.Token).ConfigureAwait(false);
                    if (read == 0)
                    {
                        break;
                    }

                    n += read;
                }

                var requestLine = Encoding.ASCII.GetString(head, 0, n).Split("\r\n")[0].Split(' ');
                var (status, body, type) = requestLine switch
                {
                    ["GET" or "HEAD", "/metrics", ..] => ("200 OK", _body, "text/plain; version=0.0.4; charset=utf-8"),
                    ["GET" or "HEAD", "/", ..] => ("200 OK", "vrescue guard: metrics at /metrics\n", "text/plain; charset=utf-8"),
                    [_, _, ..] when requestLine[0] is not ("GET" or "HEAD") => ("405 Method Not Allowed", "GET only\n", "text/plain; charset=utf-8"),
                    _ => ("404 Not Found", "not found\n", "text/plain; charset=utf-8"),
                };
                var bytes = Encoding.UTF8.GetBytes(body);
                var header = $"HTTP/1.1 {status}\r\nContent-Type: {type}\r\nContent-Length: {bytes.Length}\r\nConnection: close\r\n\r\n";
                await stream.WriteAsync(Encoding.ASCII.GetBytes(header), timeout.Token).ConfigureAwait(false);
                if (requestLine[0] != "HEAD")
                {
                    await stream.WriteAsync(bytes, timeout.Token).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is IOException or OperationCanceledException or SocketException or ObjectDisposedException)
            {
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener.Stop();
        await _loop.ConfigureAwait(false);
        _stop.Dispose();
    }
}
