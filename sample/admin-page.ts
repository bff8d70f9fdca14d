/** The admin page: plain HTML and a little script, served as it is (no build step). */
export const ADMIN_PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Rooms — admin</title>
  <style>
    body { font: 14px system-ui, sans-serif; margin: 1.5rem; color: #222; }
    h1 { font-size: 1.3rem; } h2 { font-size: 1rem; margin-top: 1.5rem; }
    table { border-collapse: collapse; } td, th { border-bottom: 1px solid #ddd; padding: .25rem .75rem; text-align: left; }
    td.n { text-align: right; font-variant-numeric: tabular-nums; }
    #events li { font-family: ui-monospace, monospace; font-size: 12px; }
    .remote { color: #06c; } .down { color: #b00; font-weight: 600; } .up { color: #070; }
    #rate-chart { border: 1px solid #ddd; background: #fafafa; }
    .swatch { display: inline-block; width: .8em; height: .8em; margin-right: .4em; }
  </style>
</head>
<body>
  <h1>Rooms <small id="instance"></small></h1>
  <p id="connection"></p>
  <h2>Events per second by type (published + received, last minute)</h2>
  <svg id="rate-chart" width="600" height="120" viewBox="0 0 600 120"></svg>
  <table><thead><tr><th>type</th><th>events/s</th><th>published</th><th>received</th></tr></thead><tbody id="rates"></tbody></table>
  <h2>Handlers (durations sampled)</h2>
  <table><thead><tr><th>handler</th><th>runs</th><th>errors</th><th>p50 ms</th><th>p99 ms</th><th>last error</th></tr></thead><tbody id="handlers"></tbody></table>
  <section id="durable" hidden>
    <h2>JetStream consumers</h2>
    <table><thead><tr><th>consumer</th><th>group</th><th>pending</th><th>ack pending</th><th>redelivered</th></tr></thead><tbody id="consumers"></tbody></table>
    <h2>Dead letters: <span id="dead-letter-count"></span></h2>
    <p id="replay-result"></p>
    <ul id="dead-letters"></ul>
  </section>
  <h2>Events by type, counted while an admin page is open</h2>
  <table><tbody id="counters"></tbody></table>
  <section id="outbox" hidden>
    <h2>Outbox (orders)</h2>
    <table><tbody id="outbox-lag"></tbody></table>
  </section>
  <h2>Players per room (cluster)</h2>
  <table><tbody id="rooms"></tbody></table>
  <h2>Events as they flow</h2>
  <ul id="events"></ul>
  <script>
    const $ = (id) => document.getElementById(id);
    const cell = (text, numeric) => { const td = document.createElement('td'); td.textContent = text ?? ''; if (numeric) td.className = 'n'; return td; };
    const rows = (body, entries) => { body.replaceChildren(...entries.map((values) => { const tr = document.createElement('tr'); values.forEach((v) => tr.append(cell(v, typeof v === 'number'))); return tr; })); };
    const COLOURS = ['#06c', '#c60', '#090', '#909', '#c03', '#066', '#660'];
    const colourOf = {};
    const colour = (type) => (colourOf[type] ??= COLOURS[Object.keys(colourOf).length % COLOURS.length]);
    const SAMPLES = 60;
    const history = {}; // type -> events/s, oldest first
    let previous;

    /** Rates from the difference of two status() snapshots. */
    function sampleRates(types, at) {
      const rates = {};
      for (const [type, { published, received }] of Object.entries(types)) {
        const before = previous?.types[type];
        const dt = previous ? (at - previous.at) / 1000 : 0;
        const counted = published + received - (before ? before.published + before.received : 0);
        rates[type] = dt > 0 ? Math.max(0, counted / dt) : 0;
        (history[type] ??= []).push(rates[type]);
        if (history[type].length > SAMPLES) history[type].shift();
      }
      previous = { types, at };
      return rates;
    }

    function drawChart() {
      const svg = $('rate-chart');
      const max = Math.max(1, ...Object.values(history).flat());
      const lines = Object.entries(history).map(([type, values]) => {
        const points = values.map((v, i) => \`\${(i + SAMPLES - values.length) * (600 / (SAMPLES - 1))},\${115 - (v / max) * 105}\`).join(' ');
        const line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
        line.setAttribute('points', points);
        line.setAttribute('fill', 'none');
        line.setAttribute('stroke', colour(type));
        line.setAttribute('stroke-width', '2');
        line.dataset.type = type;
        return line;
      });
      const label = document.createElementNS('http://www.w3.org/2000/svg', 'text');
      label.setAttribute('x', '4'); label.setAttribute('y', '12'); label.setAttribute('font-size', '10');
      label.textContent = \`max \${max.toFixed(1)}/s\`;
      svg.replaceChildren(label, ...lines);
    }

    function showConnection(bus) {
      const { transport } = bus;
      const p = $('connection');
      p.className = bus.ready ? 'up' : 'down';
      p.textContent = \`\${bus.state} since \${new Date(bus.since).toLocaleTimeString()} on \${transport.transport}\${transport.server ? ' (' + transport.server + ')' : ''}\` +
        \` — \${transport.disconnects} disconnects, \${transport.reconnects} reconnects\${transport.lastError ? ', last error: ' + transport.lastError : ''}\`;
    }

    function showDurable(state) {
      const server = state.bus.server;
      if (!server.consumers) return;
      $('durable').hidden = false;
      rows($('consumers'), server.consumers.map((c) => [c.name, c.group, c.pending, c.ackPending, c.redelivered]));
      $('dead-letter-count').textContent = String(server.deadLetters ?? 0);
      $('dead-letters').replaceChildren(...(state.deadLetters ?? []).map((letter) => {
        const li = document.createElement('li');
        li.textContent = \`\${letter.time} \${letter.type || '(undecodable)'} \${letter.id} for \${letter.group} after \${letter.attempts} attempts: \${letter.error} \`;
        const button = document.createElement('button');
        button.className = 'replay';
        button.textContent = 'replay';
        button.onclick = async () => {
          const response = await fetch(\`/admin/dead-letters/\${encodeURIComponent(letter.id)}/replay\`, { method: 'POST' });
          const body = await response.json();
          $('replay-result').textContent = response.ok ? \`replayed \${body.replayed} of \${letter.id}\` : \`replay failed: \${body.message}\`;
          refresh();
        };
        li.append(button);
        return li;
      }));
    }

    async function refresh() {
      const state = await (await fetch('/admin/state')).json();
      const bus = state.bus;
      $('instance').textContent = \`instance \${state.instanceId} on \${bus.transport.transport}\${bus.transport.connected ? '' : ' (disconnected)'}\`;
      showConnection(bus);
      const rates = sampleRates(bus.types, Date.now());
      drawChart();
      rows($('rates'), Object.entries(bus.types).map(([type, t]) => [type, rates[type].toFixed(1), t.published, t.received]));
      for (const tr of $('rates').children) {
        const swatch = document.createElement('span');
        swatch.className = 'swatch';
        swatch.style.background = colour(tr.firstChild.textContent);
        tr.firstChild.prepend(swatch);
      }
      rows($('handlers'), Object.entries(bus.handlers).map(([name, h]) => [name, h.runs, h.errors, h.p50Ms ?? '', h.p99Ms ?? '', h.lastError ?? '']));
      showDurable(state);
      rows($('counters'), Object.entries(state.counters));
      const outbox = state.bus.outbox;
      $('outbox').hidden = !outbox;
      if (outbox) rows($('outbox-lag'), [['unsent events', String(outbox.unsent)], ['oldest unsent', \`\${outbox.oldestUnsentMs} ms\`], ['sent by this instance', String(outbox.relayed)], ['relay errors', \`\${outbox.relayErrors}\${outbox.lastError ? ' (' + outbox.lastError + ')' : ''}\`]]);
      rows($('rooms'), Object.entries(state.rooms).map(([room, players]) => [room, \`\${players.length}: \${players.join(', ')}\`]));
    }
    const source = new EventSource('/admin/events');
    source.onmessage = (message) => {
      const event = JSON.parse(message.data);
      const li = document.createElement('li');
      li.className = event.local ? 'local' : 'remote';
      li.textContent = \`\${event.time} \${event.type}\${event.key ? '.' + event.key : ''} from \${event.local ? 'this instance' : event.origin} \${JSON.stringify(event.data)}\`;
      $('events').prepend(li);
      while ($('events').children.length > 200) $('events').lastChild.remove();
    };
    refresh();
    setInterval(refresh, 1000);
  </script>
</body>
</html>
`;
