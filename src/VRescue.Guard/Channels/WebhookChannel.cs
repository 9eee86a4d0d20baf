// SPDX-License-Identifier: MIT
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using VRescue.Guard.Alerts;
using VRescue.Guard.Run;

namespace VRescue.Guard.Channels;

/// <summary>
/// HTTP POST of the alert as JSON (camelCase, enums kebab-case, the same shape as the spool). Any 2xx is success.
/// The alert id goes in an <c>Idempotency-Key</c> header as well as the body, so a retried delivery can be recognised.
/// </summary>
public sealed class WebhookChannel : IAlertChannel
{
    private readonly GuardChannelConfig _config;
    private readonly HttpClient _http;

    public WebhookChannel(GuardChannelConfig config, TimeSpan timeout)
    {
        _config = config;
        _http = new HttpClient { Timeout = timeout };
    }

    public string Name => _config.Name ?? "webhook";

    public Task DeliverAsync(GuardAlert alert, CancellationToken cancel) => AlertChannels.Guard(Name, async () =>
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, _config.Url)
        {
            Content = new StringContent(JsonSerializer.Serialize(alert, GuardJson.Context.GuardAlert), Encoding.UTF8, new MediaTypeHeaderValue("application/json")),
        };
        request.Headers.TryAddWithoutValidation("Idempotency-Key", alert.Id);
        request.Headers.UserAgent.Add(new ProductInfoHeaderValue("vrescue-guard", "1"));
        foreach (var (k, v) in _config.Headers)
        {
            request.Headers.TryAddWithoutValidation(k, v);
        }

        using var response = await _http.SendAsync(request, cancel).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            throw new IOException($"POST {_config.Url} answered {(int)response.StatusCode} {response.ReasonPhrase}");
        }
    });
}

/// <summary>JSON conventions for alerts, spool and state (same as the CLI's --json: camelCase, kebab-case enums).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, UseStringEnumConverter = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, WriteIndented = true)]
[JsonSerializable(typeof(GuardAlert))]
[JsonSerializable(typeof(SpooledDelivery))]
[JsonSerializable(typeof(GuardStateDocument))]
internal sealed partial class GuardJsonContext : JsonSerializerContext;

internal static class GuardJson
{
    public static readonly GuardJsonContext Context = new(new JsonSerializerOptions
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        WriteIndented = true,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.KebabCaseLower) },
    });
}
