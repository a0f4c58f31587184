/**
 * One turn of the event loop, so a worker reads its pending messages ("stop" among them) in the
 * middle of a long run of WASM calls, which resolve without ever leaving the microtask queue.
 *
 * Not `setTimeout(0)`: browsers clamp a nested timeout to 4 ms (Node to 1 ms), so a decode loop
 * that yielded every 25 ms through it lost 4-16% of its time sleeping. A MessageChannel message is
 * a task like the worker's own messages, queued after the ones already waiting, and runs at once.
 */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(null);
  });
}
