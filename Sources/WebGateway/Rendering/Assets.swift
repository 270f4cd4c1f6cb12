import Foundation
import HTTPTypes
import Hummingbird
import Mustache

/// The gateway's templates and static files (Sources/WebGateway/Templates and Static), found
/// beside the executable as SwiftPM builds them (`calltrace_WebGateway.resources`), or where
/// `make install` puts them (`<prefix>/share/calltrace/web`), or where the `assets` setting says.
struct Assets: Sendable {
    let folder: String

    static func locate(configured: String?) throws -> Assets {
        let executableFolder = Bundle.main.executableURL?.resolvingSymlinksInPath().deletingLastPathComponent().path ?? "."
        let candidates = configured.map { [$0] } ?? [executableFolder + "/calltrace_WebGateway.resources",
                                                      executableFolder + "/../share/calltrace/web"]
        for folder in candidates where FileManager.default.fileExists(atPath: folder + "/Templates/layout.mustache") {
            return Assets(folder: folder)
        }
        throw WebSetupError("the web app's templates are not in \(candidates.joined(separator: " or ")) (Templates/layout.mustache); set assets to the folder that holds Templates/ and Static/")
    }

    /// Every template, parsed now: a broken one stops the start, not a page later.
    func templates() throws -> MustacheLibrary {
        var library = MustacheLibrary()
        let folder = self.folder + "/Templates"
        for name in try FileManager.default.contentsOfDirectory(atPath: folder).sorted() where name.hasSuffix(".mustache") {
            let text = try String(contentsOfFile: folder + "/" + name, encoding: .utf8)
            try library.register(text, named: String(name.dropLast(".mustache".count)))
        }
        return library
    }

    /// The static files (a few kB of CSS and script), read once.
    func staticFiles() throws -> StaticFiles {
        let folder = self.folder + "/Static"
        var files: [String: (type: String, body: ByteBuffer)] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: folder).sorted() {
            guard let type = StaticFiles.types[(name as NSString).pathExtension] else { continue }
            files[name] = (type, ByteBuffer(data: try Data(contentsOf: URL(fileURLWithPath: folder + "/" + name))))
        }
        return StaticFiles(files: files)
    }
}

/// `/static/<name>`: our own CSS and scripts, cacheable for a day (never inline: the pages'
/// Content-Security-Policy allows only these).
struct StaticFiles: Sendable {
    let files: [String: (type: String, body: ByteBuffer)]
    static let types = ["css": "text/css; charset=utf-8", "js": "text/javascript; charset=utf-8", "svg": "image/svg+xml"]

    func response(_ name: String) -> Response? {
        guard let file = files[name] else { return nil }
        return Response(status: .ok, headers: [.contentType: file.type, .cacheControl: "public, max-age=86400"], body: .init(byteBuffer: file.body))
    }
}
