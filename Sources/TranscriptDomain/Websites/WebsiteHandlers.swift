import CallTraceAPI
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import Foundation

/// `calltrace.transcript.v1.WebsiteService`: a firm's websites, pools and conversions, for its
/// people (through gateways) and operators under a grant.
struct WebsiteHandler: Calltrace_Transcript_V1_WebsiteServiceHandler {
    let rules: WebsiteRules
    let authorizer: any Authorizing
    let policies: Calltrace_Transcript_V1_WebsiteServicePolicies = {
        let users: PeerPolicy = .gateways | .operators
        return .init(createWebsite: users, updateWebsite: users, listWebsites: users, deleteWebsite: users, setPoolNumbers: users,
                     getPoolStatus: users, exportConversions: users)
    }()

    func createWebsite(_ request: Calltrace_Transcript_V1_CreateWebsiteRequest, principal who: Principal, context: ServerContext) async throws
        -> Calltrace_Transcript_V1_CreateWebsiteResponse {
        let website = try await rules.create(Self.settings(request.settings), org: request.orgID, by: who.actor)
        return .with { $0.website = Self.proto(website) }
    }

    func updateWebsite(_ request: Calltrace_Transcript_V1_UpdateWebsiteRequest, principal who: Principal, context: ServerContext) async throws
        -> Calltrace_Transcript_V1_UpdateWebsiteResponse {
        let website = try await rules.update(request.websiteID, Self.settings(request.settings), org: request.orgID, by: who.actor)
        return .with { $0.website = Self.proto(website) }
    }

    func listWebsites(_ request: Calltrace_Transcript_V1_ListWebsitesRequest, principal _: Principal, context: ServerContext) async throws
        -> Calltrace_Transcript_V1_ListWebsitesResponse {
        let websites = try await rules.websites(org: request.orgID)
        return .with { $0.websites = websites.map(Self.proto) }
    }

    func deleteWebsite(_ request: Calltrace_Transcript_V1_DeleteWebsiteRequest, principal who: Principal, context: ServerContext) async throws
        -> Calltrace_Transcript_V1_DeleteWebsiteResponse {
        try await rules.delete(request.websiteID, org: request.orgID, by: who.actor)
        return .init()
    }

    func setPoolNumbers(_ request: Calltrace_Transcript_V1_SetPoolNumbersRequest, principal who: Principal, context: ServerContext) async throws
        -> Calltrace_Transcript_V1_SetPoolNumbersResponse {
        let website = try await rules.setPool(request.websiteID, numbers: request.numbers, org: request.orgID, by: who.actor)
        return .with { $0.website = Self.proto(website) }
    }

    func getPoolStatus(_ request: Calltrace_Transcript_V1_GetPoolStatusRequest, principal _: Principal, context: ServerContext) async throws
        -> Calltrace_Transcript_V1_GetPoolStatusResponse {
        let status = try await rules.poolStatus(request.websiteID, org: request.orgID, from: request.fromUnixMs, before: request.beforeUnixMs)
        return .with {
            $0.poolSize = UInt32(status.size); $0.held = UInt32(status.held); $0.visits = UInt64(status.counts.visits)
            $0.reservations = UInt64(status.counts.reservations); $0.takenOver = UInt64(status.counts.tookOver)
            $0.holdSeconds = UInt32(WebsiteRules.hold / 1000)
        }
    }

    func exportConversions(_ request: Calltrace_Transcript_V1_ExportConversionsRequest, principal who: Principal, context: ServerContext) async throws
        -> Calltrace_Transcript_V1_ExportConversionsResponse {
        let enquiryName = try Self.conversionName(request.enquiryConversionName, "enquiry_conversion_name")
        let matterName = try Self.conversionName(request.matterConversionName, "matter_conversion_name")
        let export = try await rules.exportConversions(org: request.orgID, from: request.fromUnixMs, before: request.beforeUnixMs,
                                                       includeExported: request.includeExported, preview: request.preview, by: who.actor)
        return .with {
            $0.rows = export.conversions.map { conversion in
                .with {
                    $0.clickIDKind = .init(rawValue: conversion.kind.rawValue) ?? .unspecified; $0.clickID = conversion.clickID
                    $0.conversion = conversion.name; $0.convertedAtUnixMs = conversion.at; $0.callID = conversion.callID
                }
            }
            $0.alreadyExported = UInt64(export.alreadyExported); $0.withoutClickID = UInt64(export.withoutClickID)
            $0.googleAdsCsv = export.googleAdsCSV(enquiryName: enquiryName.isEmpty ? "Genuine enquiry" : enquiryName,
                                                  matterName: matterName.isEmpty ? "Matter opened" : matterName)
        }
    }

    /// A conversion action's name as Google Ads shows it; never a spreadsheet formula.
    static func conversionName(_ raw: String, _ field: String) throws -> String {
        let name = try DomainText.line(raw, field, max: 100)
        guard !name.hasPrefix("="), !name.hasPrefix("+"), !name.hasPrefix("-"), !name.hasPrefix("@") else {
            throw DomainError.invalid("\(field) cannot start with =, +, - or @")
        }
        return name
    }

    static func settings(_ proto: Calltrace_Transcript_V1_WebsiteSettings) -> WebsiteSettings {
        WebsiteSettings(name: proto.name, origins: proto.origins, targetNumbers: proto.targetNumbers, source: proto.source,
                        clickIDs: proto.clickIds.compactMap { ClickIDKind(rawValue: $0.rawValue) })
    }

    static func proto(_ website: WebsiteRow) -> Calltrace_Transcript_V1_Website {
        .with {
            $0.websiteID = website.id; $0.orgID = website.org; $0.name = website.name; $0.siteKey = website.siteKey
            $0.origins = website.origins; $0.targetNumbers = website.targetNumbers; $0.source = website.source
            $0.clickIds = website.clickIDs.compactMap(Calltrace_Transcript_V1_ClickIdKind.init(rawValue:))
            $0.poolNumbers = website.pool; $0.createdAtUnixMs = website.createdAt
        }
    }
}

/// `calltrace.transcript.v1.VisitorService`: what the website tag asks through a web gateway,
/// for anonymous visitors (no token: the website's key and the page's origin decide).
struct VisitorHandler: Calltrace_Transcript_V1_VisitorServiceHandler {
    let rules: WebsiteRules
    let policies = Calltrace_Transcript_V1_VisitorServicePolicies(getWebsiteTag: .gateways, reserveNumber: .gateways, renewReservation: .gateways)

    func getWebsiteTag(_ request: Calltrace_Transcript_V1_GetWebsiteTagRequest, context: ServerContext) async throws
        -> Calltrace_Transcript_V1_GetWebsiteTagResponse {
        let tag = try await rules.tag(siteKey: request.siteKey, origin: request.origin)
        return .with {
            $0.targetNumbers = tag.website.targetNumbers; $0.sourceNumber = tag.sourceNumber
            $0.clickIds = tag.website.clickIDs.compactMap(Calltrace_Transcript_V1_ClickIdKind.init(rawValue:))
            $0.holdSeconds = UInt32(WebsiteRules.hold / 1000)
        }
    }

    func reserveNumber(_ request: Calltrace_Transcript_V1_ReserveNumberRequest, context: ServerContext) async throws
        -> Calltrace_Transcript_V1_ReserveNumberResponse {
        let touch = Touch(utmSource: request.utmSource, utmMedium: request.utmMedium, utmCampaign: request.utmCampaign, utmTerm: request.utmTerm,
                          landingPath: request.landingPath, referrerHost: request.referrerHost)
        let reserved = try await rules.reserve(VisitStart(siteKey: request.siteKey, origin: request.origin, visitorID: request.visitorID,
                                                          visitID: request.visitID, touch: touch, clickIDs: request.clickIds))
        return .with {
            $0.number = reserved.number; $0.visitID = reserved.visitID; $0.visitorID = reserved.visitorID
            $0.holdSeconds = UInt32(WebsiteRules.hold / 1000); $0.sourceNumber = reserved.isSourceNumber
        }
    }

    func renewReservation(_ request: Calltrace_Transcript_V1_RenewReservationRequest, context: ServerContext) async throws
        -> Calltrace_Transcript_V1_RenewReservationResponse {
        let renewed = try await rules.renew(siteKey: request.siteKey, origin: request.origin, visitID: request.visitID)
        return .with { $0.number = renewed.number; $0.changed = renewed.changed; $0.holdSeconds = UInt32(WebsiteRules.hold / 1000) }
    }
}
