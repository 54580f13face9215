"""MAKE_SWARM_USER_CONTENT's work, shared by both runtimes: apply a task's OpsList (downloads
and extractions) inside one directory. The process runtime makes that directory its volume; the
docker runtime fills a scratch directory and copies it into Docker volumes.

An HPE content task fills Docker volumes:

    Body:
      ContentType: BUILDCONTENT | SWARMCONTENT
      OpsList:
        - {Operation: DOWNLOAD, Target: "https://host/pkg.tar.gz", Options: [{Out: pkg.tar.gz}]}
        - {Operation: EXTRACT, Target: pkg.tar.gz, Options: [{Out: pkg}]}

Here a volume is a directory, and `opslist.run_ops` applies the OpsList inside it, in order:

* DOWNLOAD fetches `Target` (`http://`, `https://`, `file://` or an absolute host path; a local
  directory is copied as a tree) to `<volume>/<Out>` (`download`); `Out` defaults to the
  Target's basename. `Out` is taken literally as the output path (a trailing slash does not
  mean "into").
* EXTRACT unpacks a tar (plain, gz, bz2, xz) or zip archive into `<volume>/<Out>` (default: the
  volume root) (`extract`). `Target` is either a path relative to the volume (typically an
  earlier DOWNLOAD's Out) or a URI / absolute path, which is read in place or downloaded to a
  temporary file first.

`Out` and relative Targets must stay inside the volume, also through symlinks already there.
Archives are checked entry by entry before anything is written: absolute names, `..`, links
that resolve outside the destination, entries below an in-archive symlink, device files and
fifos are refused, and tar extraction also runs under tarfile's "data" filter.

Volume naming (`opslist.volume_names`): BUILDCONTENT makes one volume named after the task's
Outcome; SWARMCONTENT makes one copy per SL node of the SWOP profile, named `<Outcome>-<idx>` for
node indices 0..n-1, so node `idx` mounts its own copy.

The modules: `common` (the error and limits they share), `download`, `extract` and `opslist`.
"""
