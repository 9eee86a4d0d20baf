// SPDX-License-Identifier: MIT
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using VRescue.Recovery.Probe;

namespace VRescue.Cli.Rendering;

/// <summary>The one JSON convention for --json: camelCase names, enums as kebab-case strings, indented.</summary>
public static class Json
{
    public static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
        // Names are UTF-8 text for people and scripts, not HTML: keep "é" and quotes readable.
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.KebabCaseLower) },
        // Source-generated metadata for the hot reports (saves ~0.1 s of start-up reflection per run);
        // reflection stays as the fallback for everything else.
        TypeInfoResolver = JsonTypeInfoResolver.Combine(VRescueJsonContext.Default, new DefaultJsonTypeInfoResolver()),
    };

    public static void Write<T>(TextWriter output, T value) => output.WriteLine(JsonSerializer.Serialize(value, Options));
}

/// <summary>Compile-time JSON metadata for report types printed on every run.</summary>
[JsonSerializable(typeof(ProbeReport))]
internal sealed partial class VRescueJsonContext : JsonSerializerContext;
