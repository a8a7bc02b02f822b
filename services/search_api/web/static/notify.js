/*
 * FacePass "notify me when new photos of me arrive": a consented subscription.
 *
 * On the search page (#notify): after each search answered, offer it; the consent text says
 * what is kept and until when, and the checkbox must be ticked (never pre-ticked) before
 * "Notify me" sends the same selfies the search sent, with consent=true, to
 * POST /api/v2/subscriptions. The answer's token only ever lives in this script's memory (never
 * in storage or cookies) and goes to the API in the path only; the page shows the link to
 * /m/{token} and "Stop notifications" (DELETE). How the link reaches the attendee later (SMS,
 * WhatsApp, e-mail) is the event platform's business.
 * On /m/{token} (#subscription-page): GET the subscription's photos and show them in the
 * gallery (gallery.js), with the expiry date and "Stop notifications"; a 404 says it ended.
 */
(function () {
  'use strict';

  var FacePass = window.FacePass;
  var API_URL = '/api/v2/subscriptions';
  var ACCEPT = { Accept: 'application/json, application/problem+json' };
  var TOKEN = /^\/m\/([A-Za-z0-9_-]{20,100})\/?$/;
  var DAY_MS = 24 * 60 * 60 * 1000;
  var ENDED = 'This subscription has ended (deleted or expired).';
  var STOPPED = 'Notifications stopped: this subscription has ended and the face embedding ' +
    'kept for it is deleted.';

  function subscriptionUrl(token) {
    return API_URL + '/' + encodeURIComponent(token);
  }

  /** A day, as the reader's locale writes it. */
  function day(date) {
    return date.toLocaleDateString(undefined, { year: 'numeric', month: 'long', day: 'numeric' });
  }

  /** Show `date` in `element` (a <time>). */
  function showDate(element, date) {
    element.dateTime = date.toISOString();
    element.textContent = day(date);
  }

  /** The answer and its JSON body (null when it has none). */
  function answered(response) {
    return response.json().catch(function () { return null; }).then(function (json) {
      return { response: response, json: json };
    });
  }

  /** What to say of an error answer: the problem's detail, as a sentence. */
  function problemText(response, problem) {
    var detail = problem && problem.detail ? String(problem.detail) : '';
    var text = detail ? detail.charAt(0).toUpperCase() + detail.slice(1) + '.' :
      'Something went wrong (error ' + response.status + ').';
    var wait = response.headers.get('Retry-After');
    if (/^\d+$/.test(wait || '')) {
      text += ' Please try again in ' + wait + (wait === '1' ? ' second.' : ' seconds.');
    } else if (!detail) {
      text += ' Please try again.';
    }
    return text;
  }

  var UNREACHABLE = 'Could not reach FacePass. Check your connection and try again.';

  /** DELETE the subscription; resolves once it is gone (204, or 404: already gone). */
  function unsubscribe(token) {
    return fetch(subscriptionUrl(token), { method: 'DELETE', headers: ACCEPT, cache: 'no-store' })
      .then(function (response) {
        if (response.status === 204 || response.status === 404) return null;
        return answered(response).then(function (a) {
          throw new Error(problemText(a.response, a.json));
        });
      }, function () {
        throw new Error(UNREACHABLE);
      });
  }

  // ---- the search page: the offer, the consent, the confirmation ------------------------

  function searchPage(panel) {
    var openButton = document.getElementById('notify-open');
    var form = document.getElementById('notify-form');
    var consent = document.getElementById('notify-consent');
    var submit = document.getElementById('notify-submit');
    var until = document.getElementById('notify-until');
    var done = document.getElementById('notify-done');
    var link = document.getElementById('notify-link');
    var stop = document.getElementById('notify-stop');
    var statusBox = document.getElementById('notify-status');
    var days = parseInt(panel.dataset.days, 10) || 14;
    /** The last search answered: {sessionId, selfies (the Blobs it sent), found}. */
    var searched = null;
    /** The live subscription's token (memory only). */
    var token = null;

    function setStatus(kind, text) { FacePass.setStatus(statusBox, kind, text); }

    /** The offer, folded: the button that reveals the consent, the box unticked. */
    function offer() {
      openButton.hidden = false;
      openButton.setAttribute('aria-expanded', 'false');
      form.hidden = true;
      consent.checked = false;
      submit.disabled = true;
      done.hidden = true;
    }

    document.addEventListener('facepass:search-started', function () {
      if (token !== null) return;  // a live subscription's link and Stop stay on screen
      searched = null;
      panel.hidden = true;
      FacePass.clearStatus(statusBox);
    });

    document.addEventListener('facepass:searched', function (event) {
      if (token !== null) return;
      searched = event.detail;
      offer();
      panel.hidden = false;
    });

    openButton.addEventListener('click', function () {
      showDate(until, new Date(Date.now() + days * DAY_MS));
      openButton.hidden = true;
      openButton.setAttribute('aria-expanded', 'true');
      form.hidden = false;
      consent.focus();
    });

    consent.addEventListener('change', function () {
      submit.disabled = !consent.checked;
    });

    form.addEventListener('submit', function (event) {
      event.preventDefault();
      // Only an explicit tick sends anything.
      if (!consent.checked || !searched || !searched.selfies.length) return;
      submit.disabled = true;
      setStatus('busy', 'Setting up notifications…');
      var body = new FormData();
      body.append('session_id', searched.sessionId);
      searched.selfies.forEach(function (blob, index) {
        body.append('file', blob, 'selfie-' + (index + 1) + '.jpg');
      });
      body.append('consent', 'true');
      fetch(API_URL, { method: 'POST', body: body, headers: ACCEPT, cache: 'no-store' })
        .then(answered)
        .then(function (a) {
          if (a.response.status !== 201 || !a.json || !a.json.token) {
            setStatus('error', problemText(a.response, a.json));
            submit.disabled = !consent.checked;
            return;
          }
          token = a.json.token;
          form.hidden = true;
          link.href = '/m/' + encodeURIComponent(token);
          done.hidden = false;
          var soFar = a.json.photos_so_far;
          setStatus('success', 'Done: new photos of you in this event will be looked for until ' +
            day(new Date(a.json.expires_at)) + '. ' + (soFar === 1 ? '1 photo' : soFar +
            ' photos') + ' of you so far.');
        })
        .catch(function () {
          setStatus('error', UNREACHABLE);
          submit.disabled = !consent.checked;
        });
    });

    stop.addEventListener('click', function () {
      if (token === null) return;
      stop.disabled = true;
      unsubscribe(token)
        .then(function () {
          token = null;
          link.href = '/m/';
          offer();
          if (!searched) panel.hidden = true;
          setStatus('success', STOPPED);
        }, function (error) {
          setStatus('error', error.message);
        })
        .finally(function () {
          stop.disabled = false;
        });
    });
  }

  // ---- /m/{token}: the subscription's photos ----------------------------------------------

  function subscriptionPage(main) {
    var statusBox = document.getElementById('status');
    var info = document.getElementById('subscription');
    var session = document.getElementById('subscription-session');
    var expires = document.getElementById('subscription-expires');
    var stop = document.getElementById('subscription-stop');
    var match = TOKEN.exec(window.location.pathname);

    function setStatus(kind, text) { FacePass.setStatus(statusBox, kind, text); }

    function ended(text) {
      FacePass.gallery.clear();
      info.hidden = true;
      setStatus('info', text);
    }

    if (main.dataset.token !== 'valid' || !match) {
      setStatus('error', 'There is no subscription at this link. Check that you opened the ' +
        'whole link.');
      return;
    }
    var token = match[1];

    setStatus('busy', 'Loading your photos…');
    fetch(subscriptionUrl(token) + '/photos', { headers: ACCEPT, cache: 'no-store' })
      .then(answered)
      .then(function (a) {
        if (a.response.status === 404) return ended(ENDED);
        if (!a.response.ok || !a.json) return setStatus('error', problemText(a.response, a.json));
        session.textContent = a.json.session_id;
        showDate(expires, new Date(a.json.expires_at));
        info.hidden = false;
        var count = FacePass.gallery.show(a.json.results);
        if (count === 0) {
          setStatus('info', 'No photos of you yet: new ones appear here as the event\u2019s ' +
            'photos arrive.');
        } else {
          setStatus('success', (count === 1 ? '1 photo' : count + ' photos') + ' of you so far.');
        }
      })
      .catch(function () {
        setStatus('error', UNREACHABLE);
      });

    stop.addEventListener('click', function () {
      stop.disabled = true;
      unsubscribe(token)
        .then(function () {
          ended(STOPPED);
        }, function (error) {
          setStatus('error', error.message);
        })
        .finally(function () {
          stop.disabled = false;
        });
    });
  }

  var panel = document.getElementById('notify');
  var main = document.getElementById('subscription-page');
  if (panel) searchPage(panel);
  if (main) subscriptionPage(main);
})();
