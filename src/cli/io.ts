/**
 * Where the command writes and reads. Writing to a closed stdout (`| head`)
 * ends quietly: EPIPE marks the stream closed and later output is dropped,
 * so the command finishes with its normal exit code and no stack trace.
 */
export interface Io {
  out: (s: string) => void;
  /** Whether stdout is a terminal: JSON is then indented for reading; to a pipe or a file it is compact. */
  tty?: boolean;
  err: (s: string) => void;
  /** The whole of stdin, for the file name `-`. */
  readStdin?: () => Promise<string>;
  /** A progress line rewritten in place on stderr (null clears it); present only when stderr is a terminal. */
  progress?: (line: string | null) => void;
}

/** A line rewritten in place on a terminal. */
function progressWriter(stream: NodeJS.WriteStream): (line: string | null) => void {
  return (line) => {
    const cols = stream.columns > 1 ? stream.columns - 1 : 79;
    stream.write(line === null ? "\r\x1b[K" : `\r${line.slice(0, cols)}\x1b[K`);
  };
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(typeof c === "string" ? Buffer.from(c) : c);
  return Buffer.concat(chunks).toString("utf8");
}

/** A writer to `stream` that goes quiet once the reader has gone (EPIPE). */
function lineWriter(stream: NodeJS.WriteStream): (s: string) => void {
  let closed = false;
  stream.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") closed = true;
    else throw e;
  });
  return (s) => {
    if (closed) return;
    stream.write(s + "\n");
  };
}

let processIoOnce: Io | null = null;

/** The process's stdout, stderr and stdin (one instance, so the EPIPE handlers are installed once). */
export function processIo(): Io {
  processIoOnce ??= {
    out: lineWriter(process.stdout),
    err: lineWriter(process.stderr),
    readStdin: () => readAll(process.stdin),
    tty: process.stdout.isTTY === true,
    ...(process.stderr.isTTY === true ? { progress: progressWriter(process.stderr) } : {}),
  };
  return processIoOnce;
}
