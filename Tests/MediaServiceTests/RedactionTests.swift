import CSndfile
import CallTraceAPI
import CallTraceProto
import CallTraceRPC
import CallTraceDeploymentSupport
import CallTraceTestSupport
import Foundation
import Testing

@Suite("P16: redaction — spoken card numbers are never kept in audio")
struct RedactionTests {
    @Test("The ranges become digital silence and every other byte is identical; a new key and file replace the old; links still open it")
    func pcm16() async throws {
        let deployment = try await MediaDeployment()
        let (org, admin) = try await deployment.organisation()
        let asAdmin = try bearer(admin)
        let file = wavFile(samples: 16_000)  // 2 s of 8 kHz 16-bit mono: 16 bytes per millisecond
        let id = try await deployment.upload(file, org: org).recordingID
        let link = try await ShareLinks(try deployment.media.client()).createShareLink(.with {
            $0.orgID = org; $0.recordingID = id; $0.ttlSeconds = 600
        }, options: asAdmin)
        let redacted = try await deployment.gateway.redactRecording(.with {
            $0.orgID = org; $0.recordingID = id; $0.reason = "card number"
            $0.ranges = [.with { $0.startMs = 100; $0.endMs = 200 }, .with { $0.startMs = 1500; $0.endMs = 1550 }]
        }, options: asAdmin)
        #expect(redacted.mutedBytes == 100 * 16 + 50 * 16)
        let played = try await deployment.gateway.play(id, org: org, options: asAdmin)
        #expect(played.count == file.count)
        let muted = [(44 + 100 * 16)..<(44 + 200 * 16), (44 + 1500 * 16)..<(44 + 1550 * 16)]
        var wrong = 0
        for index in 0..<file.count {
            let expected = muted.contains { $0.contains(index) } ? 0 : file[index]
            if played[index] != expected { wrong += 1 }
        }
        #expect(wrong == 0, "\(wrong) bytes differ from the original outside the ranges or are not silence inside them")
        #expect(redacted.recording.sha256 == sha256(played))
        // The old version's key and file are gone; the new one has its own.
        #expect(try deployment.keyedRecordings().count == 1 && !deployment.keyedRecordings().contains(id))
        #expect(try FileManager.default.contentsOfDirectory(atPath: deployment.blobFolder).count == 1)
        #expect(!FileManager.default.fileExists(atPath: deployment.blobFolder + "/" + id))
        #expect(try deployment.auditEvents().contains {
            $0.action == "recording.redacted" && $0.detail == "ranges=100-200ms,1500-1550ms; reason: card number"
        })
        let viaLink = try await ShareLinks(try deployment.media.client()).openShareLink(.with { $0.token = link.token }, options: .endUser) { stream in
            var out = Data()
            for try await message in stream { out += message.data }
            return out
        }
        #expect(viaLink == played)
        await deployment.stop()
    }

    @Test("Ranges given out of order, overlapping, repeated and across the file's chunks: each byte muted once, every other byte identical")
    func overlappingRanges() async throws {
        let deployment = try await MediaDeployment()
        let (org, admin) = try await deployment.organisation()
        let file = wavFile(samples: 80_000)  // 10 s, 160,000 bytes: three sealed chunks of 64 KiB
        let id = try await deployment.upload(file, org: org).recordingID
        let given: [(UInt64, UInt64)] = [(3_000, 5_000), (100, 200), (150, 4_100), (9_000, 9_999), (9_000, 9_999), (4_000, 4_500)]
        let redacted = try await deployment.gateway.redactRecording(.with {
            $0.orgID = org; $0.recordingID = id; $0.reason = "card number"
            $0.ranges = given.map { range in .with { $0.startMs = range.0; $0.endMs = range.1 } }
        }, options: try bearer(admin))
        // As two ranges: 100–5,000 ms and 9,000–9,999 ms.
        #expect(redacted.mutedBytes == (4_900 + 999) * 16)
        let played = try await deployment.gateway.play(id, org: org, options: try bearer(admin))
        let muted = [(44 + 100 * 16)..<(44 + 5_000 * 16), (44 + 9_000 * 16)..<(44 + 9_999 * 16)]
        let wrong = (0..<file.count).count { index in played[index] != (muted.contains { $0.contains(index) } ? 0 : file[index]) }
        #expect(played.count == file.count && wrong == 0, "\(wrong) bytes differ from the original outside the ranges or are not silence inside them")
        await deployment.stop()
    }

    @Test("μ-law is muted with its own silence (0xFF), by the transcript service; MP3 is muted too, kept as FLAC; an analyst may not redact")
    func formatsAndRefusals() async throws {
        let deployment = try await MediaDeployment()
        let (org, admin) = try await deployment.organisation()
        let analyst = try await deployment.user(.analyst, in: org, admin: admin)
        let transcript = try deployment.media(as: TemporaryPKI.identity("service", "transcript"))
        let mulaw = wavFile(samples: 8_000, encoding: 7, bits: 8)  // 8 bytes per millisecond
        let id = try await deployment.upload(mulaw, org: org, format: .wavMulaw).recordingID
        _ = try await transcript.redactRecording(.with { $0.orgID = org; $0.recordingID = id; $0.ranges = [.with { $0.startMs = 0; $0.endMs = 10 }] })
        let played = try await transcript.play(id, org: org, options: CallOptions())
        #expect(played.prefix(44) == mulaw.prefix(44))
        #expect(played.subdata(in: 44..<124).allSatisfy { $0 == 0xFF })
        #expect(played.suffix(from: 124) == mulaw.suffix(from: 124))

        // MP3 is decoded, muted and stored as FLAC (CompressedRedactionTests shows the audio).
        let file = try TestAudio.tone(milliseconds: 1000, rate: 8000, channels: 1, format: Int(SF_FORMAT_MPEG) | Int(SF_FORMAT_MPEG_LAYER_III))
        let mp3 = try await deployment.upload(file, org: org, call: "call-2", format: .mp3).recordingID
        let muted = try await transcript.redactRecording(.with { $0.orgID = org; $0.recordingID = mp3; $0.ranges = [.with { $0.startMs = 0; $0.endMs = 10 }] })
        #expect(muted.recording.format == .flac && muted.recording.redactionState == .muted && muted.mutedBytes == 160)
        #expect(try await transcript.play(mp3, org: org, options: CallOptions()).starts(with: "fLaC".utf8))
        #expect(await code {
            _ = try await deployment.gateway.redactRecording(.with { $0.orgID = org; $0.recordingID = id; $0.ranges = [.with { $0.startMs = 0; $0.endMs = 10 }] },
                                                             options: try bearer(analyst))
        } == .permissionDenied)
        await deployment.stop()
    }
}
