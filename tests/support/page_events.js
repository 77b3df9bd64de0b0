// Recorded in each test page before gradio's own scripts run: every event the page sends to the
// queue (POST .../queue/join: its fn id and event id), every answer that comes back on the page's
// stream (GET .../queue/data: 'process_completed'), and every event the page cancels (POST
// .../cancel). A test can then tell when a page has had every answer it asked for (nothing
// 'pending'), and how many times each endpoint answered: a click answered once, or lost.
(() => {
  // event_id -> {fn, state: 'pending' | 'ok' | 'failed' | 'cancelled', sent, answered (ms since the page opened)}
  const events = {};
  const finished = {};  // event_id -> [state, time], for completions seen before the join's reply
  window.__gradioEvents = events;
  const completed = (data) => {
    if (data.msg !== 'process_completed') return;
    const state = data.success ? 'ok' : 'failed';
    const event = events[data.event_id];
    if (!event) finished[data.event_id] = finished[data.event_id] || [state, performance.now()];
    else if (event.state === 'pending') {  // a cancelled event stays cancelled
      event.state = state;
      event.answered = performance.now();
    }
  };
  const realFetch = window.fetch.bind(window);
  window.fetch = async (input, init) => {
    const url = typeof input === 'string' ? input : (input && input.url) || '';
    const sent = performance.now();
    const response = await realFetch(input, init);
    try {
      if (url.includes('/queue/join')) {
        const body = JSON.parse(init.body);
        const reply = await response.clone().json();
        if (reply.event_id) {
          const [state, answered] = finished[reply.event_id] || ['pending', null];
          events[reply.event_id] = {fn: body.fn_index, state, sent, answered};
        }
      } else if (url.includes('/queue/data')) {
        const reader = response.clone().body.getReader();
        const decoder = new TextDecoder();
        let buffer = '';
        (async () => {
          for (;;) {
            const {value, done} = await reader.read();
            if (done) return;
            buffer += decoder.decode(value, {stream: true});
            let cut;
            while ((cut = buffer.indexOf('\n\n')) >= 0) {
              const chunk = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
              if (chunk.startsWith('data: ')) completed(JSON.parse(chunk.slice(6)));
            }
          }
        })().catch(() => {});
      } else if (url.includes('/cancel')) {
        const body = JSON.parse(init.body);
        if (events[body.event_id]) events[body.event_id].state = 'cancelled';
        else finished[body.event_id] = ['cancelled', performance.now()];
      }
    } catch (e) {}
    return response;
  };
  const RealEventSource = window.EventSource;
  function RecordingEventSource(url, config) {
    const source = new RealEventSource(url, config);
    source.addEventListener('message', (message) => {
      try {
        const data = JSON.parse(message.data);
        if (data.msg === 'process_completed') {
          const state = data.success ? 'ok' : 'failed';
          if (events[data.event_id]) events[data.event_id].state = state; else finished[data.event_id] = state;
        }
      } catch (e) {}
    });
    return source;
  }
  RecordingEventSource.prototype = RealEventSource.prototype;
  Object.assign(RecordingEventSource, {CONNECTING: 0, OPEN: 1, CLOSED: 2});
  window.EventSource = RecordingEventSource;
})();
