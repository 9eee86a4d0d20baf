// SPDX-License-Identifier: MIT
using System.Net.Sockets;
using System.Text;

namespace VRescue.Guard.Run;

/// <summary>sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET ("@name" is an abstract socket).</summary>
public static class SystemdNotify
{
    /// <summary>Sends e.g. "READY=1" or "WATCHDOG=1"; false when not under systemd or the send failed.</summary>
    public static bool Send(string state)
    {
        var path = Environment.GetEnvironmentVariable("NOTIFY_SOCKET");
        if (string.IsNullOrEmpty(path))
        {
            return false;
        }

        try
        {
            using var socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
            socket.Connect(new UnixDomainSocketEndPoint(path[0] == '@' ? "\0" + path[1..] : path));
            socket.Send(Encoding.UTF8.GetBytes(state));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
