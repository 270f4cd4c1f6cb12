import CallTraceProto
import Foundation
import SwiftProtobuf

/// The services' messages as the API's JSON (services/web/openapi.yaml): enum values in kebab
/// case as the CLI's flags spell them (`google-ads`, `not-new`; permissions by their dotted names),
/// times as RFC 3339, absent rather than empty or zero. Phone numbers only masked.
enum APIValues {
    typealias Schemas = Components.Schemas

    /// A proto enum's Swift case name in kebab case: `.googleAds` → "google-ads".
    static func spelling<E: SwiftProtobuf.Enum>(_ value: E) -> String {
        String(describing: value).reduce(into: "") { text, character in
            if character.isUppercase { text += "-" + character.lowercased() } else { text.append(character) }
        }
    }

    /// The proto enum value spelled `text` (`unspecified` may be spelled otherwise, as "unmarked").
    static func parse<E: SwiftProtobuf.Enum & CaseIterable>(_ text: String, unspecified: String = "unspecified") -> E? {
        if text == unspecified { return E(rawValue: 0) }
        return E.allCases.first { $0.rawValue != 0 && spelling($0) == text }
    }

    /// A generated string enum from a proto enum's spelling, `fallback` for a value it lacks.
    static func value<T: RawRepresentable<String>, E: SwiftProtobuf.Enum>(_ value: E, as _: T.Type = T.self, unspecified: String = "unspecified",
                                                                        fallback: T) -> T {
        T(rawValue: value.rawValue == 0 ? unspecified : spelling(value)) ?? fallback
    }

    static func permission(_ value: Calltrace_Identity_V1_Permission) -> Schemas.Permission? {
        Schemas.Permission(rawValue: spelling(value).replacingOccurrences(of: "-", with: "."))
    }

    static func permission(_ text: String) -> Calltrace_Identity_V1_Permission? {
        Calltrace_Identity_V1_Permission.allCases.first { $0.rawValue != 0 && permission($0)?.rawValue == text }
    }

    static func role(_ value: Calltrace_Identity_V1_Role) -> Schemas.Role { Self.value(value, fallback: .unspecified) }

    static func date(_ unixMs: Int64) -> Date { Date(timeIntervalSince1970: Double(unixMs) / 1000) }
    static func date(ifSet unixMs: Int64) -> Date? { unixMs > 0 ? date(unixMs) : nil }
    static func text(ifSet text: String) -> String? { text.isEmpty ? nil : text }

    static func call(_ call: Calltrace_Transcript_V1_Call) -> Schemas.Call {
        .init(callId: call.callID, startedAt: date(call.startedAtUnixMs), answeredAt: date(ifSet: call.answeredAtUnixMs),
              endedAt: date(ifSet: call.endedAtUnixMs), durationMs: Int64(clamping: call.durationMs), trackingNumber: text(ifSet: call.trackingNumber),
              source: call.source, channel: value(call.channel, fallback: Schemas.Call.ChannelPayload.other), campaign: text(ifSet: call.campaign),
              direction: value(call.direction, fallback: Schemas.Call.DirectionPayload.unspecified), callerNumberMasked: call.callerNumberMasked,
              outcome: value(call.outcome, unspecified: "in-progress", fallback: Schemas.Call.OutcomePayload.inProgress),
              enquiry: value(call.enquiry, unspecified: "unmarked", fallback: Schemas.Call.EnquiryPayload.unmarked), matterOpened: call.matterOpened,
              matterReference: text(ifSet: call.matterReference), practiceArea: value(call.practiceArea, fallback: Schemas.PracticeArea.other),
              recorded: call.recorded, recordingId: text(ifSet: call.recordingID), callbackOf: text(ifSet: call.callbackOf))
    }

    static func transcript(_ answer: Calltrace_Transcript_V1_GetTranscriptResponse, callID: String) -> Schemas.Transcript {
        let state: Schemas.Transcript.StatePayload = switch answer.state {
        case .queued: .queued
        case .done: .done
        case .failed: .failed
        default: .none
        }
        var analysis: Schemas.Analysis?
        if answer.hasAnalysis {
            let found = answer.analysis
            analysis = .init(summary: found.summary, practiceArea: value(found.practiceArea, fallback: Schemas.PracticeArea.other), newEnquiry: found.newEnquiry,
                             callbackRequested: found.callbackRequested, urgency: value(found.urgency, fallback: Schemas.Analysis.UrgencyPayload.unspecified))
        }
        return .init(callId: callID, state: state, failureReason: answer.state == .failed ? answer.failureReason : nil,
                     segments: answer.transcript.segments.map {
                         .init(speaker: $0.speaker, startMs: Int64(clamping: $0.startMs), endMs: Int64(clamping: $0.endMs), text: $0.text)
                     },
                     redactions: Int(answer.transcript.redactions), analysis: analysis)
    }

    static func shareLink(_ link: Calltrace_Media_V1_ShareLink, now: Int64) -> Schemas.ShareLink {
        .init(linkId: link.linkID, recordingId: link.recordingID, createdAt: date(link.createdAtUnixMs), expiresAt: date(link.expiresAtUnixMs),
              revokedAt: date(ifSet: link.revokedAtUnixMs), note: link.note, opens: Int(link.opens),
              state: link.revokedAtUnixMs > 0 ? .revoked : link.expiresAtUnixMs <= now ? .expired : .active)
    }

    /// A user as the firm's list shows them; nil for the removed.
    static func user(_ user: Calltrace_Identity_V1_User) -> Schemas.User? {
        guard let status = Schemas.User.StatusPayload(rawValue: user.status) else { return nil }
        return .init(userId: user.userID, email: user.email, displayName: user.displayName, role: role(user.role), status: status,
                     twoFactor: user.twoFactorConfirmed, createdAt: date(user.createdAtUnixMs))
    }

    static func apiToken(_ token: Calltrace_Identity_V1_ApiToken, now: Int64) -> Schemas.ApiToken {
        .init(tokenId: token.tokenID, userId: token.userID, name: token.name, prefix: token.prefix,
              permissions: token.permissions.compactMap(permission), createdAt: date(token.createdAtUnixMs),
              expiresAt: date(token.expiresAtUnixMs), lastUsedAt: date(ifSet: token.lastUsedAtUnixMs), revokedAt: date(ifSet: token.revokedAtUnixMs),
              state: token.revokedAtUnixMs > 0 ? .revoked : token.expiresAtUnixMs <= now ? .expired : .active)
    }
}
