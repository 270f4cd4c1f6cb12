import CallTraceKeys
import CallTraceProto
import CallTraceRPC
import CallTraceServiceHost
import CallTraceStorage
import CallTraceTestSupport
import Foundation
import IdentityDomain
import Testing

/// What the outside security review found in identity, each with the case that reproduced it.
@Suite("Identity hardening: the review's findings")
struct IdentityHardeningTests {
    typealias Identity = Calltrace_Identity_V1_IdentityService

    func bearer(_ token: String) throws -> CallOptions { try IdentityDeployment.bearer(token) }

    @Test("A suspended or removed invitee cannot redeem the invitation")
    func suspendedInvitee() async throws {
        let deployment = try await IdentityDeployment()
        let (org, admin) = try await deployment.organisationWithAdmin()
        for action in ["suspend", "remove"] {
            let invited = try await deployment.gateway.unary(Identity.inviteUser, .with {
                $0.orgID = org; $0.email = "\(action)@firm.example"; $0.displayName = "Pat"; $0.role = .member
            }, options: try bearer(admin))
            let invitation = try deployment.delivered(to: "\(action)@firm.example")
            if action == "suspend" {
                _ = try await deployment.gateway.unary(Identity.suspendUser, .with { $0.orgID = org; $0.userID = invited.userID },
                                                       options: try bearer(admin))
            } else {
                _ = try await deployment.gateway.unary(Identity.removeUser, .with { $0.orgID = org; $0.userID = invited.userID },
                                                       options: try bearer(admin))
            }
            #expect(await code {
                _ = try await deployment.gateway.unary(Identity.redeemInvitation, .with {
                    $0.invitationToken = invitation; $0.password = "a long and unusual passphrase"
                }, options: .endUser)
            } == .notFound, "\(action)ed invitee redeemed the invitation")
            #expect(await code {
                _ = try await deployment.gateway.unary(Identity.login, .with {
                    $0.orgID = org; $0.email = "\(action)@firm.example"; $0.password = "a long and unusual passphrase"
                }, options: .endUser)
            } == .unauthenticated)
        }
        // A removed user's address can be invited again.
        let again = try await deployment.gateway.unary(Identity.inviteUser, .with {
            $0.orgID = org; $0.email = "remove@firm.example"; $0.displayName = "Pat"; $0.role = .member
        }, options: try bearer(admin))
        #expect(!again.userID.isEmpty)
        _ = await deployment.stop()
    }

    @Test("Forty concurrent logins cannot slip past the lockout: at most five are checked, the right password among the rest is refused",
          arguments: [false, true])
    func concurrentLockout(fromOneAddress: Bool) async throws {
        let deployment = try await IdentityDeployment()
        let (org, _) = try await deployment.organisationWithAdmin(email: "admin@firm.example")
        // Per address the limit is 20: spread over 40 made-up accounts from one address. Per
        // account it is 5: one account from 40 addresses.
        func options(_ index: Int) throws -> CallOptions {
            var metadata = Metadata()
            try metadata.add("x-client-address", fromOneAddress ? "203.0.113.9" : "198.51.100.\(index)")
            return CallOptions(metadata: metadata)
        }
        let statuses = await withTaskGroup(of: StatusCode?.self) { group in
            for index in 0..<40 {
                group.addTask {
                    await code {
                        let options = try options(index)
                        _ = try await deployment.gateway.unary(Identity.login, .with {
                            $0.orgID = org
                            $0.email = fromOneAddress ? "user\(index)@firm.example" : "admin@firm.example"
                            $0.password = index == 39 ? "correct horse battery staple" : "wrong passphrase \(index)"
                        }, options: options)
                    }
                }
            }
            return await group.reduce(into: [StatusCode?]()) { $0.append($1) }
        }
        let limit = fromOneAddress ? 20 : 5
        let checked = statuses.filter { $0 != .resourceExhausted }.count
        #expect(checked <= limit, "\(checked) attempts were checked, the limit is \(limit)")
        #expect(statuses.filter { $0 == .resourceExhausted }.count >= 40 - limit)
        if !fromOneAddress {
            // The right password, after the flood, is refused too.
            #expect(await code {
                _ = try await deployment.gateway.unary(Identity.login, .with {
                    $0.orgID = org; $0.email = "admin@firm.example"; $0.password = "correct horse battery staple"
                }, options: .endUser)
            } == .resourceExhausted)
        }
        _ = await deployment.stop()
    }

    @Test("A successful login gives its address back the attempt: an office's good logins never lock it out")
    func goodLoginsDoNotLockAnAddress() async throws {
        let deployment = try await IdentityDeployment()
        let (org, _) = try await deployment.organisationWithAdmin(email: "admin@firm.example")
        var options = CallOptions()
        try options.metadata.add("x-client-address", "2001:db8:1:2::7")
        for _ in 0..<25 {
            _ = try await deployment.gateway.unary(Identity.login, .with {
                $0.orgID = org; $0.email = "admin@firm.example"; $0.password = "correct horse battery staple"
            }, options: options)
        }
        // Another address of the same /64 shares the bucket; a non-IP address is refused.
        var neighbour = CallOptions()
        try neighbour.metadata.add("x-client-address", "2001:db8:1:2::8")
        #expect(await code {
            _ = try await deployment.gateway.unary(Identity.login, .with {
                $0.orgID = org; $0.email = "admin@firm.example"; $0.password = "correct horse battery staple"
            }, options: neighbour)
        } == .ok)
        var bogus = CallOptions()
        try bogus.metadata.add("x-client-address", "not-an-address")
        #expect(await code {
            _ = try await deployment.gateway.unary(Identity.login, .with {
                $0.orgID = org; $0.email = "admin@firm.example"; $0.password = "correct horse battery staple"
            }, options: bogus)
        } == .invalidArgument)
        _ = await deployment.stop()
    }

    @Test("On one connection, a Health call sent while eight logins are in flight does not wait for them")
    func healthDuringLogins() async throws {
        // Identity's scrypt runs on a pool of one thread that this test holds: the eight logins
        // queue there, and none can finish until the test lets go. Health, sent on the same
        // connection meanwhile, must answer — it would wait behind them, or behind the first,
        // were the password checks on the connection's I/O thread.
        let pool = BlockingPool(threads: 1, name: "held-blocking")
        let deployment = try await IdentityDeployment(blocking: pool)
        let (org, _) = try await deployment.organisationWithAdmin(email: "admin@firm.example")
        let holding = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        let held = Task { try await pool.run { holding.signal(); release.wait() } }
        #expect(await eventually { holding.wait(timeout: .now()) == .success })
        let order = OrderLog()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<8 {
                group.addTask {
                    let status = await code {
                        _ = try await deployment.gateway.unary(Identity.login, .with {
                            $0.orgID = org; $0.email = "person\(index)@firm.example"; $0.password = "wrong passphrase here"
                        }, options: .endUser)
                    }
                    order.append("login \(status.map { "\($0)" } ?? "?")")
                }
            }
            // All eight wait for the held thread.
            #expect(await eventually { pool.queued == 8 })
            var options = CallOptions()
            options.timeout = patience
            #expect(await code { _ = try await deployment.gateway.unary(Calltrace_Ops_V1_HealthService.check, .init(), options: options) } == .ok)
            #expect(order.entries.isEmpty, "logins finished before Health: \(order.entries)")
            release.signal()
            try await group.waitForAll()
        }
        try await held.value
        #expect(order.entries == Array(repeating: "login UNAUTHENTICATED", count: 8))
        _ = await deployment.stop()
    }

    @Test("Only the credential gateway (web) may log in, redeem or reset; tokens reach only the user's mailbox, never a caller")
    func credentialGatewaysOnly() async throws {
        let deployment = try await IdentityDeployment()
        let (org, admin) = try await deployment.organisationWithAdmin(email: "admin@firm.example")
        let telephony = try deployment.client(TemporaryPKI.identity("gateway", "telephony"))
        let crm = try deployment.client(TemporaryPKI.identity("gateway", "crm"))
        for gateway in [telephony, crm] {
            #expect(await code {
                _ = try await gateway.unary(Identity.login, .with { $0.orgID = org; $0.email = "admin@firm.example"; $0.password = "correct horse battery staple" }, options: .endUser)
            } == .permissionDenied)
            #expect(await code {
                _ = try await gateway.unary(Identity.requestPasswordReset, .with { $0.orgID = org; $0.email = "admin@firm.example" }, options: .endUser)
            } == .permissionDenied)
            #expect(await code {
                _ = try await gateway.unary(Identity.resetPassword, .with { $0.resetToken = "x"; $0.password = "a brand new passphrase" }, options: .endUser)
            } == .permissionDenied)
            #expect(await code {
                _ = try await gateway.unary(Identity.redeemInvitation, .with { $0.invitationToken = "x"; $0.password = "a brand new passphrase" }, options: .endUser)
            } == .permissionDenied)
        }
        // The operator who creates an organisation learns its id, not its admin's invitation:
        // the answer has no token field at all, and the token went to the admin's mailbox.
        let created = try await deployment.operatorClient.unary(Identity.createOrganization, .with {
            $0.name = "Other Firm LLP"; $0.firstAdminEmail = "boss@other.example"
        })
        let invitation = try deployment.delivered(to: "boss@other.example")
        #expect(try !(created.serializedBytes() as Data).contains(Data(invitation.utf8)))
        let mail = try FileManager.default.contentsOfDirectory(atPath: deployment.setup.mailbox)
        #expect(!mail.isEmpty)
        for name in mail {
            let mode = try FileManager.default.attributesOfItem(atPath: deployment.setup.mailbox + "/" + name)[.posixPermissions] as? Int
            #expect(mode == 0o600, "\(name)")
        }
        // Only the credential gateway's x-client-address is believed: with an allow-list in place,
        // a CRM integration cannot name an allowed address on a user's behalf.
        _ = try await deployment.gateway.unary(Identity.setSecurityPolicy, .with {
            $0.orgID = org; $0.allowedClientRanges = ["198.51.100.0/24"]
        }, options: try bearer(admin))
        var spoofed = try bearer(admin)
        try spoofed.metadata.add("x-client-address", "198.51.100.7")
        #expect(await code {
            _ = try await crm.unary(Identity.inviteUser, .with { $0.orgID = org; $0.email = "n@firm.example"; $0.role = .member }, options: spoofed)
        } == .permissionDenied)
        #expect(await code {
            _ = try await deployment.gateway.unary(Identity.inviteUser, .with { $0.orgID = org; $0.email = "n@firm.example"; $0.role = .member },
                                                   options: spoofed)
        } == .ok)
        _ = await deployment.stop()
    }

    @Test("The gateways the deployment file lists pass on the address they were told (the telephony gateway, for the web app's people); a gateway it does not list cannot name one")
    func deploymentGatewaysPassOnAddresses() async throws {
        let deployment = try await IdentityDeployment(.process, deployment: #"{"services": {}, "gateways": {"telephony": "127.0.0.1:1"}}"#)
        let (org, admin) = try await deployment.organisationWithAdmin(email: "admin@firm.example")
        _ = try await deployment.gateway.unary(Identity.setSecurityPolicy, .with {
            $0.orgID = org; $0.allowedClientRanges = ["198.51.100.0/24"]
        }, options: try bearer(admin))
        func invite(_ email: String, through gateway: String, from address: String) async -> StatusCode? {
            await code {
                var options = try bearer(admin)
                try options.metadata.add("x-client-address", address)
                _ = try await deployment.client(TemporaryPKI.identity("gateway", gateway)).unary(Identity.inviteUser, .with {
                    $0.orgID = org; $0.email = email; $0.role = .member
                }, options: options)
            }
        }
        #expect(await invite("a@firm.example", through: "telephony", from: "198.51.100.7") == .ok)
        #expect(await invite("b@firm.example", through: "telephony", from: "203.0.113.9") == .permissionDenied, "an address outside the allow-list")
        #expect(await invite("c@firm.example", through: "crm", from: "198.51.100.7") == .permissionDenied, "a gateway the file does not list")
        _ = await deployment.stop()
    }

    @Test("A credential call that does not name the end user's address is refused, and counts nothing")
    func credentialCallsNeedAnAddress() async throws {
        let deployment = try await IdentityDeployment()
        let (org, _) = try await deployment.organisationWithAdmin(email: "admin@firm.example")
        let noAddress = CallOptions()
        #expect(await code {
            _ = try await deployment.gateway.unary(Identity.login, .with { $0.orgID = org; $0.email = "admin@firm.example"; $0.password = "correct horse battery staple" }, options: noAddress)
        } == .invalidArgument)
        #expect(await code {
            _ = try await deployment.gateway.unary(Identity.requestPasswordReset, .with { $0.orgID = org; $0.email = "admin@firm.example" }, options: noAddress)
        } == .invalidArgument)
        #expect(await code {
            _ = try await deployment.gateway.unary(Identity.resetPassword, .with { $0.resetToken = "x"; $0.password = "a brand new passphrase" }, options: noAddress)
        } == .invalidArgument)
        #expect(await code {
            _ = try await deployment.gateway.unary(Identity.redeemInvitation, .with { $0.invitationToken = "x"; $0.password = "a brand new passphrase" }, options: noAddress)
        } == .invalidArgument)
        #expect(try deployment.setup.deliveredToken(to: "admin@firm.example", kind: "password_reset") == nil)
        // The same login naming the address goes through.
        #expect(await code {
            _ = try await deployment.gateway.unary(Identity.login, .with { $0.orgID = org; $0.email = "admin@firm.example"; $0.password = "correct horse battery staple" }, options: .endUser)
        } == .ok)
        _ = await deployment.stop()
    }

    @Test("An admin resets a user's two-factor (audited); the user's sessions end and they enrol again")
    func resetTwoFactor() async throws {
        let deployment = try await IdentityDeployment()
        let (org, admin) = try await deployment.organisationWithAdmin()
        let member = try await deployment.invite(.member, in: org, adminToken: admin, email: "member@firm.example")
        let memberID = try await deployment.authorize(member, org: org, .reportsRead).userID
        _ = try await deployment.gateway.unary(Identity.enrollTotp, .with { $0.orgID = org; $0.password = "a long and unusual passphrase" },
                                               options: try bearer(member))
        #expect(await code {
            _ = try await deployment.gateway.unary(Identity.resetTwoFactor, .with { $0.orgID = org; $0.userID = memberID }, options: try bearer(member))
        } == .permissionDenied)
        _ = try await deployment.gateway.unary(Identity.resetTwoFactor, .with { $0.orgID = org; $0.userID = memberID }, options: try bearer(admin))
        #expect(await code { _ = try await deployment.authorize(member, org: org, .reportsRead) } == .unauthenticated)
        let actions = try await deployment.database.read { db in
            try db.query("SELECT event FROM audit_outbox").compactMap { $0.blob("event") }
                .map { try Calltrace_Compliance_V1_AuditEvent(serializedBytes: $0) }
        }
        _ = await deployment.stop()
        #expect(actions.contains { $0.action == "two_factor.reset" && $0.resource == "user:\(memberID)" })
    }

    @Test("The organisation's last active admin cannot remove, suspend or demote themselves")
    func lastAdmin() async throws {
        let deployment = try await IdentityDeployment()
        let (org, admin) = try await deployment.organisationWithAdmin()
        let me = try await deployment.authorize(admin, org: org, .usersManage).userID
        #expect(await code {
            _ = try await deployment.gateway.unary(Identity.changeUserRole, .with { $0.orgID = org; $0.userID = me; $0.role = .member },
                                                   options: try bearer(admin))
        } == .failedPrecondition)
        #expect(await code {
            _ = try await deployment.gateway.unary(Identity.removeUser, .with { $0.orgID = org; $0.userID = me }, options: try bearer(admin))
        } == .failedPrecondition)
        #expect(await code {
            _ = try await deployment.gateway.unary(Identity.suspendUser, .with { $0.orgID = org; $0.userID = me }, options: try bearer(admin))
        } == .failedPrecondition)
        // Still an admin, still in.
        #expect(try await deployment.authorize(admin, org: org, .usersManage).role == .admin)
        _ = await deployment.stop()
    }

    @Test("Logins and resets naming organisations that do not exist create no keys")
    func noKeysForMadeUpOrganisations() async throws {
        let deployment = try await IdentityDeployment()
        _ = try await deployment.organisationWithAdmin()
        for index in 0..<5 {
            #expect(await code {
                _ = try await deployment.gateway.unary(Identity.login, .with {
                    $0.orgID = "org_made_up_\(index)"; $0.email = "x@firm.example"; $0.password = "some passphrase here"
                }, options: .endUser)
            } == .unauthenticated)
            _ = try await deployment.gateway.unary(Identity.requestPasswordReset, .with { $0.orgID = "org_made_up_\(index)"; $0.email = "x@firm.example" }, options: .endUser)
            // A malformed id (empty, 2 KiB, upper case) is refused before anything happens.
            for malformed in ["", String(repeating: "z", count: 2048), "ORG_X"] {
                #expect(await code {
                    _ = try await deployment.gateway.unary(Identity.login, .with { $0.orgID = malformed; $0.email = "x@firm.example"; $0.password = "p" }, options: .endUser)
                } == .invalidArgument)
            }
        }
        _ = await deployment.stop()
        let keyStore = try Database(path: deployment.setup.keyStore)
        #expect(try keyStore.sync { try $0.query("SELECT count(*) AS n FROM org_keys")[0].int("n") } == 1)
    }
}

@Suite("Identity: who may administer organisations")
struct AdminOperatorTests {
    @Test("The key store defaults to the master key's folder, apart from the data; beside the database it is warned about")
    func keyStoreOutsideTheDataFolder() async throws {
        let identity = try await InProcessService.start(IdentityService.self)
        await identity.stop()
        #expect(FileManager.default.fileExists(atPath: identity.setup.keyStore))
        let dataFolder = (identity.setup.database as NSString).deletingLastPathComponent
        #expect(try FileManager.default.contentsOfDirectory(atPath: dataFolder).allSatisfy { !$0.contains("keys") })
        #expect(!identity.log.text.contains("key store is in the database's folder"))

        // A SQLite database's folder (a PostgreSQL database has none).
        guard TestDatabases.postgres == nil else { return }
        let careless = try await InProcessService.start(IdentityService.self) {
            $0.keyStore = ($0.database as NSString).deletingLastPathComponent + "/identity.keys.sqlite"
        }
        await careless.stop()
        #expect(careless.log.text.contains("warning the key store is in the database's folder"))
    }

    @Test("With admin_operators set, only the named operators create or suspend organisations")
    func onlyNamedOperators() async throws {
        let identity = try await InProcessService.start(IdentityService.self) { $0[IdentitySettings.self].adminOperators = ["alice"] }
        let request = Calltrace_Identity_V1_CreateOrganizationRequest.with { $0.name = "Firm"; $0.firstAdminEmail = "a@firm.example" }
        let ops = try identity.client(identity: TemporaryPKI.identity("operator", "ops"))
        #expect(await code { _ = try await ops.unary(Calltrace_Identity_V1_IdentityService.createOrganization, request) } == .permissionDenied)
        let alice = try identity.client(identity: TemporaryPKI.identity("operator", "alice"))
        #expect(await code { _ = try await alice.unary(Calltrace_Identity_V1_IdentityService.createOrganization, request) } == .ok)
        await identity.stop()
    }
}

@Suite("Identity housekeeping")
struct IdentityHousekeepingTests {
    typealias Identity = Calltrace_Identity_V1_IdentityService

    @Test("An hourly job deletes expired sessions, stale failed-login counts and used or expired tokens")
    func purge() async throws {
        let deployment = try await IdentityDeployment(.inProcess)
        let (org, _) = try await deployment.organisationWithAdmin(email: "admin@firm.example")
        _ = try await deployment.gateway.unary(Identity.requestPasswordReset, .with { $0.orgID = org; $0.email = "admin@firm.example" }, options: .endUser)
        _ = await code {
            _ = try await deployment.gateway.unary(Identity.login, .with { $0.orgID = org; $0.email = "admin@firm.example"; $0.password = "wrong passphrase here" }, options: .endUser)
        }
        func count(_ table: String) async throws -> Int64 {
            try await deployment.database.read { try $0.query("SELECT count(*) AS n FROM \(table)")[0].int("n") ?? 0 }
        }
        #expect(try await count("sessions") == 1)
        #expect(try await count("login_failures") >= 1)
        #expect(try await count("invitations") == 2)  // the redeemed invitation, the reset token
        deployment.clock.advance(by: .seconds(13 * 3600))
        #expect(await eventually { (try? await count("sessions")) == 0 })
        #expect(try await count("login_failures") == 0)
        #expect(try await count("invitations") == 0)
        _ = await deployment.stop()
    }
}

/// The order in which concurrent things finished.
final class OrderLog: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [String] = []
    func append(_ entry: String) {
        lock.lock()
        list.append(entry)
        lock.unlock()
    }
    var entries: [String] {
        lock.lock()
        defer { lock.unlock() }
        return list
    }
}
