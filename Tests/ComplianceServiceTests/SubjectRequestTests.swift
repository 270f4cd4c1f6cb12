import CallTraceAPI
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceTestSupport
import Foundation
import Testing

@Suite("Compliance: subject requests (P13)", .serialized)
struct SubjectRequestTests {
    typealias Request = Calltrace_Compliance_V1_SubjectRequest

    static func open(_ requests: SubjectRequests, org: String, admin: String, kind: Calltrace_Compliance_V1_SubjectRequestKind = .access,
                     numbers: [String] = ["07700 900123"], received: String = "2026-11-02", nation: String = "england-and-wales") async throws -> Request {
        try await requests.openSubjectRequest(.with {
            $0.orgID = org; $0.kind = kind; $0.phoneNumbers = numbers; $0.receivedOn = received; $0.nation = nation
            $0.notes = "Letter from the caller's solicitor"
        }, options: try bearer(admin)).request
    }

    @Test("The due date follows the ICO rules: a stopped clock adds its days, proof of identity restarts it, an extension only before the first due date; overdue and due-soon lists; closing needs an outcome")
    func deadlines() async throws {
        let deployment = try await CallDataDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await deployment.organisation(tracking: "01184960000")
        let requests = try deployment.requests()
        // Today is Monday 2 November 2026.
        let access = try await Self.open(requests, org: org, admin: admin)
        #expect(access.dueOn == "2026-12-02" && access.state == .open && access.identityCheck == .pending && !access.overdue)
        #expect(access.phoneNumbersMasked == ["+44 7700 ••••23"] && access.notes == "Letter from the caller's solicitor")

        for (kind, numbers, received, nation, why) in [
            (Calltrace_Compliance_V1_SubjectRequestKind.unspecified, ["07700 900123"], "2026-11-02", "scotland", "no kind"),
            (.access, ["call me on 07700 900999 please"], "2026-11-02", "scotland", "not a number"),
            (.access, [], "2026-11-02", "scotland", "no number"),
            (.access, Array(repeating: "07700 900123", count: 11), "2026-11-02", "scotland", "eleven numbers"),
            (.access, ["07700 900123"], "2026-11-03", "scotland", "received tomorrow"),
            (.access, ["07700 900123"], "2 November", "scotland", "not a date"),
            (.access, ["07700 900123"], "2026-11-02", "wales", "not a nation"),
        ] {
            var message = ""
            let refused = await code {
                do { _ = try await Self.open(requests, org: org, admin: admin, kind: kind, numbers: numbers, received: received, nation: nation) } catch {
                    message = "\(error)"
                    throw error
                }
            }
            #expect(refused == .invalidArgument, "\(why)")
            #expect(!message.contains("900999"), "the error never repeats a number: \(message)")
        }

        // Waiting five days for proof of identity: the clock stops; the proof restarts it.
        let paused = try await requests.pauseSubjectRequest(.with {
            $0.orgID = org; $0.requestID = access.requestID; $0.reason = "awaiting proof of identity"
        }, options: try bearer(admin)).request
        #expect(paused.state == .paused && paused.pausedSince == "2026-11-02" && paused.pauseReason == "awaiting proof of identity")
        deployment.clock.advance(by: .days(5))
        let stopped = try await requests.getSubjectRequest(.with { $0.orgID = org; $0.requestID = access.requestID }, options: try bearer(admin)).request
        #expect(stopped.dueOn == "2026-12-07", "the days stopped so far count while it is stopped")
        let proved = try await requests.recordIdentityCheck(.with { $0.orgID = org; $0.requestID = access.requestID; $0.result = .passed },
                                                            options: try bearer(admin)).request
        #expect(proved.state == .open && proved.pausedDays == 5 && proved.dueOn == "2026-12-07" && proved.identityCheck == .passed)
        #expect(await code {
            _ = try await requests.resumeSubjectRequest(.with { $0.orgID = org; $0.requestID = access.requestID }, options: try bearer(admin))
        } == .failedPrecondition, "resuming a running clock")

        // Extended: three months from the same start, plus the paused days (Sunday 7 Feb 2027 → Monday 8th).
        #expect(await code {
            _ = try await requests.extendSubjectRequest(.with { $0.orgID = org; $0.requestID = access.requestID }, options: try bearer(admin))
        } == .invalidArgument, "an extension needs its reason")
        let extended = try await requests.extendSubjectRequest(.with {
            $0.orgID = org; $0.requestID = access.requestID; $0.reason = "numerous requests"
        }, options: try bearer(admin)).request
        #expect(extended.extended && extended.dueOn == "2027-02-08" && extended.extensionReason == "numerous requests")
        #expect(await code {
            _ = try await requests.extendSubjectRequest(.with { $0.orgID = org; $0.requestID = access.requestID; $0.reason = "again" },
                                                        options: try bearer(admin))
        } == .failedPrecondition, "only once")

        // Received 1 October: due Monday 2 November (1 November is a Sunday), overdue by today (7 November).
        let late = try await Self.open(requests, org: org, admin: admin, received: "2026-10-01")
        #expect(late.dueOn == "2026-11-02" && late.overdue)
        #expect(await code {
            _ = try await requests.extendSubjectRequest(.with { $0.orgID = org; $0.requestID = late.requestID; $0.reason = "complex" },
                                                        options: try bearer(admin))
        } == .failedPrecondition, "too late to extend")
        let soon = try await Self.open(requests, org: org, admin: admin, received: "2026-10-10")
        #expect(soon.dueOn == "2026-11-10")

        func listed(_ view: Calltrace_Compliance_V1_SubjectRequestView) async throws -> [String] {
            try await requests.listSubjectRequests(.with { $0.orgID = org; $0.view = view }, options: try bearer(admin)).requests.map(\.requestID)
        }
        #expect(try await listed(.overdue) == [late.requestID])
        #expect(try await listed(.dueSoon) == [soon.requestID])
        #expect(try await listed(.unspecified) == [late.requestID, soon.requestID, access.requestID], "soonest due first")

        #expect(await code {
            _ = try await requests.closeSubjectRequest(.with { $0.orgID = org; $0.requestID = late.requestID }, options: try bearer(admin))
        } == .invalidArgument, "closing needs an outcome")
        let closed = try await requests.closeSubjectRequest(.with {
            $0.orgID = org; $0.requestID = late.requestID; $0.outcome = "Bundle sent by recorded delivery on 6 November"
        }, options: try bearer(admin)).request
        #expect(closed.state == .closed && closed.closedAtUnixMs > 0 && !closed.overdue)
        let (overdue, all) = (try await listed(.overdue), try await listed(.all))
        #expect(overdue.isEmpty && all.count == 3)
    }

    @Test("Erasure deletes every call of the subject's numbers in transcript and media once identity is proved, then confirms; objection suppresses the caller; no number is kept in clear")
    func erasureAndObjection() async throws {
        let deployment = try await CallDataDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await deployment.organisation(tracking: "01184960000")
        let t0 = CallDataDeployment.start
        let first = try await deployment.call("call-1", org: org, tracking: "01184960000", caller: "07700 900123", at: t0 + 1000)
        let second = try await deployment.call("call-2", org: org, tracking: "01184960000", caller: "+44 (0)7700 900123", at: t0 + 2000)
        let someoneElse = try await deployment.call("call-3", org: org, tracking: "01184960000", caller: "07700 900456", at: t0 + 3000)
        let requests = try deployment.requests()

        let erasure = try await Self.open(requests, org: org, admin: admin, kind: .erasure, numbers: ["0044 7700 900123"])
        let located = try await requests.locateSubjectData(.with { $0.orgID = org; $0.requestID = erasure.requestID }, options: try bearer(admin)).calls
        #expect(located.map(\.callID) == ["call-1", "call-2"] && located.map(\.recordingID) == [first, second])
        #expect(await code {
            _ = try await requests.eraseSubjectData(.with { $0.orgID = org; $0.requestID = erasure.requestID }, options: try bearer(admin))
        } == .failedPrecondition, "not before the identity check passes")
        _ = try await requests.recordIdentityCheck(.with { $0.orgID = org; $0.requestID = erasure.requestID; $0.result = .passed }, options: try bearer(admin))
        let erasing = try await requests.eraseSubjectData(.with { $0.orgID = org; $0.requestID = erasure.requestID }, options: try bearer(admin)).request
        #expect(erasing.deletionIds.count == 2)
        var confirmed = erasing
        #expect(try await eventually {
            confirmed = try await requests.getSubjectRequest(.with { $0.orgID = org; $0.requestID = erasure.requestID }, options: try bearer(admin)).request
            return confirmed.erasureConfirmedAtUnixMs > 0
        })
        #expect(confirmed.deletionsDone == 2)
        #expect(try await deployment.exists(call: "call-1", recording: first, org: org, admin: admin) == (false, false))
        #expect(try await deployment.exists(call: "call-2", recording: second, org: org, admin: admin) == (false, false))
        #expect(try await deployment.exists(call: "call-3", recording: someoneElse, org: org, admin: admin) == (true, true))
        let access = try await Self.open(requests, org: org, admin: admin, kind: .access, numbers: ["07700 900456"])
        _ = try await requests.recordIdentityCheck(.with { $0.orgID = org; $0.requestID = access.requestID; $0.result = .passed }, options: try bearer(admin))
        #expect(await code {
            _ = try await requests.eraseSubjectData(.with { $0.orgID = org; $0.requestID = access.requestID }, options: try bearer(admin))
        } == .failedPrecondition, "an access request erases nothing")

        let objection = try await Self.open(requests, org: org, admin: admin, kind: .objection, numbers: ["07700 900456"])
        _ = try await requests.recordIdentityCheck(.with { $0.orgID = org; $0.requestID = objection.requestID; $0.result = .passed }, options: try bearer(admin))
        let objected = try await requests.objectToProcessing(.with { $0.orgID = org; $0.requestID = objection.requestID }, options: try bearer(admin))
        #expect(objected.request.objectionAppliedAtUnixMs > 0)
        let next = try await deployment.calls(as: TemporaryPKI.telephony).startCall(.with {
            $0.callID = "call-4"; $0.trackingNumber = "01184960000"; $0.callerNumber = "07700 900456"; $0.direction = .inbound
            $0.startedAtUnixMs = t0 + 4000
        })
        #expect(!next.record, "the objector's next call is not recorded")
        let closed = try await requests.closeSubjectRequest(.with { $0.orgID = org; $0.requestID = erasure.requestID; $0.outcome = "Erased; confirmed by letter" },
                                                            options: try bearer(admin)).request
        #expect(closed.state == .closed)

        // Compliance's own events reach its trail through its outbox, a moment later.
        let steps: Set = ["subject_request.opened", "subject_request.located", "subject_request.identity_checked", "subject_request.erasure_started",
                          "subject_request.erasure_confirmed", "subject_request.closed"]
        var actions: Set<String> = []
        #expect(try await eventually {
            actions = Set(try await Calltrace_Compliance_V1_AuditServiceClient(try deployment.compliance.client())
                .listAuditEvents(.with { $0.orgID = org; $0.resource = "subject_request:\(erasure.requestID)" }, options: try bearer(admin)).events
                .map(\.event.action))
            return actions.isSuperset(of: steps)
        }, "every step audited: \(actions)")
        // Compliance keeps the numbers and notes sealed: not in its database, its WAL or its log.
        let written = String(decoding: try deployment.compliance.storedBytes(), as: UTF8.self) + deployment.compliance.log.text
        for secret in ["7700900123", "7700900456", "900123", "solicitor", "Erased; confirmed"] { #expect(!written.contains(secret), "\(secret)") }
    }
}

@Suite("Compliance refusals: every user-facing compliance RPC", .serialized)
struct ComplianceCaseRefusalTests {
    @Test("Every retention, deletion, subject-request, bundle, matter, offboarding, notice and register RPC refuses no token, an expired token, another org's token, too weak a role, an operator without a grant and a service certificate", .overTLS)
    func refusalTable() async throws {
        let deployment = try await CallDataDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await deployment.organisation(tracking: "01184960000")
        let expiring = try await deployment.identity.newOrganisation("Expiring LLP").admin
        deployment.identity.clock.advance(by: .seconds(12 * 3600 - 60))
        let (other, otherAdmin) = try await deployment.organisation("Jones LLP", tracking: "01184960001")
        _ = other
        deployment.identity.clock.advance(by: .seconds(120))
        let admin2 = try await deployment.identity.login(email: try #require(deployment.adminEmail(of: org)), org: org)
        _ = admin
        let member = try await deployment.user(.member, in: org, admin: admin2)
        let analyst = try await deployment.user(.analyst, in: org, admin: admin2)
        let opened = try await SubjectRequestTests.open(try deployment.requests(), org: org, admin: admin2)

        typealias Attempt = @Sendable (CallDataDeployment, String, CallOptions) async throws -> Void
        let id = opened.requestID
        // Accepting names the agreement read: the one current now.
        let agreement = try await Registers(try deployment.compliance.client()).getProcessingAgreement(.with { $0.orgID = org }, options: try bearer(admin2))
            .agreement
        // (name, the weak role that lacks the permission, what the admin gets, the call). The
        // admin's calls run in this order on one organisation, each as the rules answer it then:
        // the case's identity check has passed by the time its clock is stopped, and it is
        // closed last; "none" ids are ones that do not exist.
        let calls: [(String, String, StatusCode, Attempt)] = [
            ("GetRetentionPolicy", member, .ok, { d, who, o in _ = try await d.retention(as: who).getRetentionPolicy(.with { $0.orgID = org }, options: o) }),
            ("SetRetentionPolicy", member, .ok, { d, who, o in
                _ = try await d.retention(as: who).setRetentionPolicy(.with { $0.orgID = org; $0.policy = .with { $0.recordingsMonths = 12 } }, options: o)
            }),
            ("RunRetention", member, .ok, { d, who, o in _ = try await d.retention(as: who).runRetention(.with { $0.orgID = org }, options: o) }),
            ("ListRetentionRuns", member, .ok, { d, who, o in _ = try await d.retention(as: who).listRetentionRuns(.with { $0.orgID = org }, options: o) }),
            ("DeleteCall", analyst, .notFound, { d, who, o in
                _ = try await d.deletions(as: who).deleteCall(.with { $0.orgID = org; $0.callID = "call-none" }, options: o)
            }),
            ("ListDeletions", analyst, .ok, { d, who, o in _ = try await d.deletions(as: who).listDeletions(.with { $0.orgID = org }, options: o) }),
            ("GetDeletion", analyst, .notFound, { d, who, o in
                _ = try await d.deletions(as: who).getDeletion(.with { $0.orgID = org; $0.deletionID = "del_none" }, options: o)
            }),
            ("OpenSubjectRequest", member, .ok, { d, who, o in
                _ = try await d.requests(as: who).openSubjectRequest(.with {
                    $0.orgID = org; $0.kind = .access; $0.phoneNumbers = ["07700 900123"]; $0.receivedOn = "2026-11-02"; $0.nation = "scotland"
                }, options: o)
            }),
            ("GetSubjectRequest", member, .ok, { d, who, o in _ = try await d.requests(as: who).getSubjectRequest(.with { $0.orgID = org; $0.requestID = id }, options: o) }),
            ("ListSubjectRequests", member, .ok, { d, who, o in _ = try await d.requests(as: who).listSubjectRequests(.with { $0.orgID = org }, options: o) }),
            ("RecordIdentityCheck", member, .ok, { d, who, o in
                _ = try await d.requests(as: who).recordIdentityCheck(.with { $0.orgID = org; $0.requestID = id; $0.result = .passed }, options: o)
            }),
            ("LocateSubjectData", member, .ok, { d, who, o in _ = try await d.requests(as: who).locateSubjectData(.with { $0.orgID = org; $0.requestID = id }, options: o) }),
            ("PauseSubjectRequest", member, .ok, { d, who, o in
                _ = try await d.requests(as: who).pauseSubjectRequest(.with { $0.orgID = org; $0.requestID = id; $0.reason = "awaiting documents" }, options: o)
            }),
            ("ResumeSubjectRequest", member, .ok, { d, who, o in _ = try await d.requests(as: who).resumeSubjectRequest(.with { $0.orgID = org; $0.requestID = id }, options: o) }),
            ("ExtendSubjectRequest", member, .ok, { d, who, o in
                _ = try await d.requests(as: who).extendSubjectRequest(.with { $0.orgID = org; $0.requestID = id; $0.reason = "complex" }, options: o)
            }),
            // The case is a request for access: it erases nothing and applies no objection.
            ("EraseSubjectData", member, .failedPrecondition, { d, who, o in
                _ = try await d.requests(as: who).eraseSubjectData(.with { $0.orgID = org; $0.requestID = id }, options: o)
            }),
            ("ObjectToProcessing", member, .failedPrecondition, { d, who, o in
                _ = try await d.requests(as: who).objectToProcessing(.with { $0.orgID = org; $0.requestID = id }, options: o)
            }),
            ("BuildAccessBundle", member, .ok, { d, who, o in _ = try await d.requests(as: who).buildAccessBundle(.with { $0.orgID = org; $0.requestID = id }, options: o) }),
            ("CloseSubjectRequest", member, .ok, { d, who, o in
                _ = try await d.requests(as: who).closeSubjectRequest(.with { $0.orgID = org; $0.requestID = id; $0.outcome = "Bundle sent" }, options: o)
            }),
            ("GetBundle", member, .notFound, { d, who, o in
                _ = try await Bundles(try d.compliance.client(identity: who)).getBundle(.with { $0.orgID = org; $0.bundleID = "bun_none" }, options: o)
            }),
            ("DownloadBundle", member, .notFound, { d, who, o in
                try await Bundles(try d.compliance.client(identity: who)).downloadBundle(.with { $0.orgID = org; $0.bundleID = "bun_none" }, options: o) { s in
                    for try await _ in s {}
                }
            }),
            // Transcript has no such call, so no matter can be recorded on it.
            ("ExportMatter", analyst, .notFound, { d, who, o in
                _ = try await Matters(try d.compliance.client(identity: who)).exportMatter(.with {
                    $0.orgID = org; $0.callID = "call-x"; $0.matterReference = "M-1"
                }, options: o)
            }),
            ("GetNotice", member, .ok, { d, who, o in
                _ = try await Notices(try d.compliance.client(identity: who)).getNotice(.with { $0.orgID = org; $0.kind = .websiteRecording }, options: o)
            }),
            ("GetNoticeSettings", member, .ok, { d, who, o in _ = try await Notices(try d.compliance.client(identity: who)).getNoticeSettings(.with { $0.orgID = org }, options: o) }),
            ("SetNoticeSettings", member, .ok, { d, who, o in
                _ = try await Notices(try d.compliance.client(identity: who)).setNoticeSettings(.with {
                    $0.orgID = org; $0.settings = .with { $0.firmName = "Smith & Co Solicitors" }
                }, options: o)
            }),
            ("GetRecordOfProcessing", member, .ok, { d, who, o in
                _ = try await Registers(try d.compliance.client(identity: who)).getRecordOfProcessing(.with { $0.orgID = org }, options: o)
            }),
            ("GetProcessingAgreement", member, .ok, { d, who, o in
                _ = try await Registers(try d.compliance.client(identity: who)).getProcessingAgreement(.with { $0.orgID = org }, options: o)
            }),
            ("AcceptProcessingAgreement", member, .ok, { d, who, o in
                _ = try await Registers(try d.compliance.client(identity: who)).acceptProcessingAgreement(.with {
                    $0.orgID = org; $0.templateVersion = agreement.templateVersion; $0.registerVersion = agreement.registerVersion
                }, options: o)
            }),
            ("StartOffboarding", member, .ok, { d, who, o in _ = try await Offboardings(try d.compliance.client(identity: who)).startOffboarding(.with { $0.orgID = org }, options: o) }),
            ("GetOffboarding", member, .ok, { d, who, o in _ = try await Offboardings(try d.compliance.client(identity: who)).getOffboarding(.with { $0.orgID = org }, options: o) }),
            // Confirmed as the rules ask (the organisation's id repeated), but for an offboarding that is not this one.
            ("ConfirmOffboarding", member, .notFound, { d, who, o in
                _ = try await Offboardings(try d.compliance.client(identity: who)).confirmOffboarding(.with {
                    $0.orgID = org; $0.offboardingID = "off_none"; $0.confirmOrgID = org
                }, options: o)
            }),
        ]
        let web = CallDataDeployment.web, ops = TemporaryPKI.identity("operator", "ops"), service = TemporaryPKI.identity("service", "media")
        for (name, weak, admitted, call) in calls {
            #expect(await code { try await call(deployment, web, CallOptions()) } == .unauthenticated, "\(name): no token")
            #expect(await code { try await call(deployment, web, try bearer(expiring)) } == .unauthenticated, "\(name): expired token")
            #expect(await code { try await call(deployment, web, try bearer(otherAdmin)) } == .permissionDenied, "\(name): another org's token")
            #expect(await code { try await call(deployment, web, try bearer(weak)) } == .permissionDenied, "\(name): too weak a role")
            #expect(await code { try await call(deployment, ops, CallOptions()) } == .permissionDenied, "\(name): an operator without a grant")
            #expect(await code { try await call(deployment, service, try bearer(admin2)) } == .permissionDenied, "\(name): a service certificate")
            var message = ""
            let answered = await code {
                do { try await call(deployment, web, try bearer(admin2)) } catch let error as RPCError {
                    message = error.message
                    throw error
                }
            }
            #expect(answered == admitted, "\(name): the admin got \(String(describing: answered)) \(message)")
        }
    }
}

@Suite("Compliance: subject requests falling due, by e-mail through identity (issue 32)")
struct SubjectRequestAlertTests {

    @Test("Each morning, whoever chose it hears by e-mail how many requests are overdue or due within 5 working days, never who asked; once a day")
    func dueAlerts() async throws {
        let deployment = try await CallDataDeployment()
        defer { Task { await deployment.stop() } }
        let (org, admin) = try await deployment.organisation(tracking: "01184960000")
        let member = try await deployment.user(.member, in: org, admin: admin)
        for token in [admin, member] {
            _ = try await deployment.identity.client().unary(Calltrace_Identity_V1_AlertService.setAlertPreferences, .with {
                $0.orgID = org; $0.enabled = token == admin ? [.subjectRequestsDue] : []
            }, options: try bearer(token))
        }
        #expect(await code {
            _ = try await deployment.identity.client().unary(Calltrace_Identity_V1_AlertService.setAlertPreferences, .with {
                $0.orgID = org; $0.enabled = [.subjectRequestsDue]
            }, options: try bearer(member))
        } == .permissionDenied, "a member does not manage subject requests")
        // Today is Monday 2 November 2026: one overdue since September, one due on Thursday, one next month.
        let requests = try deployment.requests()
        _ = try await SubjectRequestTests.open(requests, org: org, admin: admin, numbers: ["07700 900111"], received: "2026-08-03")
        _ = try await SubjectRequestTests.open(requests, org: org, admin: admin, numbers: ["07700 900222"], received: "2026-10-05")
        _ = try await SubjectRequestTests.open(requests, org: org, admin: admin, numbers: ["07700 900333"], received: "2026-11-02")
        #expect(try await eventually {
            try await deployment.compliance.instance.database.read { db in
                !(try db.query("SELECT 1 FROM job_schedules WHERE name = 'requests-due-alerts'").isEmpty)
            }
        }, "the morning run is scheduled")
        // Tuesday 07:31.
        deployment.clock.advance(by: .seconds(21 * 3600 + 31 * 60))
        #expect(try await eventually { try !deployment.identity.setup.deliveredAlerts().isEmpty })
        let mail = try #require(try deployment.identity.setup.deliveredAlerts().first)
        #expect(mail.alert == "subject_requests_due" && mail.email == deployment.adminEmail(of: org))
        #expect(mail.subject == "Subject requests: 1 overdue, 1 due within 5 working days")
        #expect(mail.body.contains("The earliest is due Thu 3 Sep 2026") && mail.body.contains("/requests"))
        for digits in ["900111", "900222", "900333", "7700"] { #expect(!mail.body.contains(digits)) }
        #expect(try deployment.identity.setup.deliveredAlerts().count == 1)
    }
}
