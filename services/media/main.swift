// calltrace-media: the media service as a process (its code: Sources/MediaDomain).
import CallTraceServiceHost
import MediaDomain

await ServiceHost.main(MediaService.self)
