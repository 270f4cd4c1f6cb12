import CSndfile
import CallTraceAPI
import CallTraceProto
import CallTraceRPC
import CallTraceDeploymentSupport
import CallTraceTestSupport
import Foundation
import Testing

@Suite("P16: compressed recordings — MP3 and Opus are muted and kept as lossless FLAC; one that cannot be muted is flagged")
struct CompressedRedactionTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let format: Calltrace_Media_V1_AudioFormat
        let libsndfileFormat: Int
        let rate: Int
        let channels: Int
        var testDescription: String { "\(format) \(rate) Hz \(channels) channel(s)" }
    }

    static let mp3 = Case(format: .mp3, libsndfileFormat: Int(SF_FORMAT_MPEG) | Int(SF_FORMAT_MPEG_LAYER_III), rate: 8000, channels: 1)
    static let opus = Case(format: .opus, libsndfileFormat: Int(SF_FORMAT_OGG) | Int(SF_FORMAT_OPUS), rate: 16000, channels: 2)

    @Test("The ranges decode as exact silence and the rest as the tone; the recording becomes FLAC (format, size, SHA-256, duration); a second redaction mutes the FLAC",
          arguments: [mp3, opus])
    func muted(_ audio: Case) async throws {
        let deployment = try await MediaDeployment()
        let (org, admin) = try await deployment.organisation()
        let asAdmin = try bearer(admin)
        let file = try TestAudio.tone(milliseconds: 3000, rate: audio.rate, channels: audio.channels, format: audio.libsndfileFormat)
        let id = try await deployment.upload(file, org: org, format: audio.format).recordingID

        let redacted = try await deployment.gateway.redactRecording(.with {
            $0.orgID = org; $0.recordingID = id; $0.reason = "card number"
            $0.ranges = [.with { $0.startMs = 1000; $0.endMs = 2000 }, .with { $0.startMs = 2500; $0.endMs = 2600 },
                         .with { $0.startMs = 1900; $0.endMs = 2000 }]  // overlapping: counted once
        }, options: asAdmin)
        let recording = redacted.recording
        #expect(recording.format == .flac && recording.redactionState == .muted && recording.redactionFailure.isEmpty)
        #expect(recording.sampleRateHz == UInt32(audio.rate) && recording.channels == UInt32(audio.channels))
        #expect(recording.durationMs == 3000)
        #expect(redacted.mutedBytes == UInt64(1100 * audio.rate / 1000 * audio.channels * 2))

        let played = try await deployment.gateway.play(id, org: org, options: asAdmin)
        #expect(played.starts(with: "fLaC".utf8))
        #expect(UInt64(played.count) == recording.sizeBytes && sha256(played) == recording.sha256)
        let decoded = try TestAudio.decode(played)
        #expect(Int(decoded.format) & Int(SF_FORMAT_TYPEMASK) == Int(SF_FORMAT_FLAC))
        #expect(decoded.rate == audio.rate && decoded.channels == audio.channels && decoded.frames == 3 * audio.rate)
        #expect(decoded.samples(from: 1000, to: 2000).allSatisfy { $0 == 0 }, "the first range is not digital silence")
        #expect(decoded.samples(from: 2500, to: 2600).allSatisfy { $0 == 0 }, "the second range is not digital silence")
        for (from, to) in [(100, 990), (2010, 2490), (2610, 2900)] {
            #expect(decoded.rms(from: from, to: to) > 0.2, "the tone is gone from \(from)-\(to) ms")
        }
        #expect(try await deployment.gateway.getRecording(.with { $0.orgID = org; $0.recordingID = id }, options: asAdmin).recording == recording)
        // The original's key and file are gone, and nothing of the scratch version is left.
        #expect(try deployment.keyedRecordings().count == 1 && !deployment.keyedRecordings().contains(id))
        #expect(try FileManager.default.contentsOfDirectory(atPath: deployment.blobFolder).count == 1)
        #expect(try deployment.auditEvents().contains {
            $0.action == "recording.redacted"
                && $0.detail == "ranges=1000-2000ms,2500-2600ms,1900-2000ms; stored as FLAC (was \(audio.format == .mp3 ? "MP3" : "Opus")); reason: card number"
        })

        // Muted again (a transcript given by hand, later): the FLAC is decoded and muted in turn.
        let again = try await deployment.gateway.redactRecording(.with {
            $0.orgID = org; $0.recordingID = id; $0.ranges = [.with { $0.startMs = 200; $0.endMs = 300 }]
        }, options: asAdmin)
        #expect(again.recording.format == .flac && again.recording.sha256 != recording.sha256)
        let twice = try TestAudio.decode(try await deployment.gateway.play(id, org: org, options: asAdmin))
        #expect(twice.frames == 3 * audio.rate)
        #expect(twice.samples(from: 200, to: 300).allSatisfy { $0 == 0 } && twice.samples(from: 1000, to: 2000).allSatisfy { $0 == 0 })
        #expect(twice.rms(from: 400, to: 900) > 0.2)
        // Lossless: outside the new range, the second version's samples are the first's.
        #expect(Array(twice.samples(from: 400, to: 3000)) == Array(decoded.samples(from: 400, to: 3000)))
        await deployment.stop()
    }

    @Test("A truncated MP3 answers FAILED_PRECONDITION saying why; the recording is flagged (Get, List, audit) and left as it was")
    func truncated() async throws {
        let deployment = try await MediaDeployment()
        let (org, admin) = try await deployment.organisation()
        let asAdmin = try bearer(admin)
        let whole = try TestAudio.tone(milliseconds: 3000, rate: 8000, channels: 1, format: Self.mp3.libsndfileFormat)
        let cut = whole.prefix(whole.count / 2)  // its Xing header still declares 3 s
        let id = try await deployment.upload(cut, org: org, format: .mp3).recordingID
        let transcript = try deployment.media(as: TemporaryPKI.identity("service", "transcript"))
        let refused = await #expect(throws: RPCError.self) {
            _ = try await transcript.redactRecording(.with {
                $0.orgID = org; $0.recordingID = id; $0.reason = "card or bank details"
                $0.ranges = [.with { $0.startMs = 500; $0.endMs = 800 }]
            })
        }
        #expect(refused?.code == .failedPrecondition)
        #expect(refused?.message.contains("cannot be muted") == true && refused?.message.contains("truncated or damaged") == true,
                "\(refused?.message ?? "")")

        let shown = try await deployment.gateway.getRecording(.with { $0.orgID = org; $0.recordingID = id }, options: asAdmin).recording
        #expect(shown.redactionState == .failed && shown.redactionFailure.contains("truncated or damaged"))
        #expect(shown.format == .mp3 && shown.sha256 == sha256(cut))
        let listed = try await deployment.gateway.listRecordings(.with { $0.orgID = org }, options: asAdmin).recordings
        #expect(listed.map(\.redactionState) == [.failed])
        #expect(try deployment.auditEvents().contains {
            $0.action == "recording.redaction_failed" && $0.resource == "recording:\(id)" && $0.detail.contains("ranges=500-800ms")
        })
        #expect(try await deployment.gateway.play(id, org: org, options: asAdmin) == cut)
        #expect(try deployment.keyedRecordings() == [id])
        #expect(try FileManager.default.contentsOfDirectory(atPath: deployment.blobFolder) == [id])

        // The flag stays after a later redaction succeeds on another file, and media serves on.
        let good = try await deployment.upload(whole, org: org, call: "call-2", format: .mp3).recordingID
        let muted = try await transcript.redactRecording(.with { $0.orgID = org; $0.recordingID = good; $0.ranges = [.with { $0.startMs = 0; $0.endMs = 10 }] })
        #expect(muted.recording.redactionState == .muted)
        #expect(try await deployment.gateway.getRecording(.with { $0.orgID = org; $0.recordingID = id }, options: asAdmin).recording.redactionState == .failed)
        await deployment.stop()
    }

    @Test("Hostile files declared MP3 or Opus (random bytes, forged signatures, another format inside) get a status, never a crash; media serves on")
    func hostile() async throws {
        let deployment = try await MediaDeployment()
        let (org, admin) = try await deployment.organisation()
        let asAdmin = try bearer(admin)
        var random = SplitMix64(state: 16)
        let wav = wavFile(samples: 8000)
        let opusPage = Array("OggS".utf8) + [0, 2] + [UInt8](repeating: 0, count: 20) + [1, 19] + Array("OpusHead".utf8)
        // (declared, bytes, whether media must refuse it: those it cannot mistake for audio)
        var files: [(Calltrace_Media_V1_AudioFormat, [UInt8], Bool)] = [
            (.mp3, Array("ID3".utf8) + [4, 0, 0, 0, 0, 0, 0] + [UInt8](wav), true),  // a WAV file behind an ID3 tag
            (.opus, [UInt8](wav), true),
            (.mp3, [UInt8](repeating: 0x11, count: 5000), true),
            (.opus, Array("OggS".utf8) + [UInt8](repeating: 0, count: 4000), true),
            (.mp3, [0xFF, 0xFB, 0x90, 0x64] + [UInt8](repeating: 0x55, count: 4000), false),
        ]
        for index in 0..<24 {
            let body = random.bytes(Int(random.next() % 20_000) + 1)
            let prefix: [UInt8] = switch index % 4 {
            case 0: []
            case 1: Array("ID3".utf8) + [3, 0, 0, 0, 0, 0, 0]
            case 2: [0xFF, 0xFB, 0x90, 0x64]
            default: opusPage
            }
            files.append((index % 4 == 3 || index % 8 == 4 ? .opus : .mp3, prefix + body, false))
        }
        for (number, (format, bytes, mustRefuse)) in files.enumerated() {
            let id = try await deployment.upload(Data(bytes), org: org, call: "call-\(number)", format: format).recordingID
            var message = ""
            let status = await code {
                do {
                    _ = try await deployment.gateway.redactRecording(.with {
                        $0.orgID = org; $0.recordingID = id; $0.ranges = [.with { $0.startMs = 0; $0.endMs = 50 }]
                    }, options: asAdmin)
                } catch let error as RPCError {
                    message = error.message
                    throw error
                }
            }
            let shown = try await deployment.gateway.getRecording(.with { $0.orgID = org; $0.recordingID = id }, options: asAdmin).recording
            if status == .ok {
                #expect(!mustRefuse, "file \(number) was muted")
                #expect(shown.format == .flac && shown.redactionState == .muted)
            } else {
                #expect(status == .failedPrecondition, "file \(number): \(String(describing: status)) \(message)")
                #expect(message.contains("cannot be muted"), "file \(number): \(message)")
                #expect(shown.redactionState == .failed && shown.format == format && shown.sha256 == sha256(Data(bytes)), "file \(number)")
            }
        }
        // Media serves on: a WAV recording is muted as before, and nothing of any attempt is left.
        let id = try await deployment.upload(wav, org: org, call: "call-wav").recordingID
        let muted = try await deployment.gateway.redactRecording(.with {
            $0.orgID = org; $0.recordingID = id; $0.ranges = [.with { $0.startMs = 0; $0.endMs = 10 }]
        }, options: asAdmin)
        #expect(muted.mutedBytes == 160 && muted.recording.format == .wavPcm16)
        #expect(try FileManager.default.contentsOfDirectory(atPath: deployment.blobFolder).count == files.count + 1)
        #expect(try deployment.keyedRecordings().count == files.count + 1)
        await deployment.stop()
    }
}
