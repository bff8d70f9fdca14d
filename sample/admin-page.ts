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
    #events li { font-family: ui-monospace, monospace; font-size: 12px; }
    .remote { color: #06c; }
  </style>
</head>
<body>
  <h1>Rooms <small id="instance"></small></h1>
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
    const rows = (body, entries) => { body.replaceChildren(...entries.map(([k, v]) => { const tr = document.createElement('tr'); for (const text of [k, v]) { const td = document.createElement('td'); td.textContent = text; tr.append(td); } return tr; })); };
    async function refresh() {
      const state = await (await fetch('/admin/state')).json();
      $('instance').textContent = \`instance \${state.instanceId} on \${state.bus.transport.transport}\${state.bus.transport.connected ? '' : ' (disconnected)'}\`;
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
      refresh();
    };
    refresh();
    setInterval(refresh, 2000);
  </script>
</body>
</html>
`;
