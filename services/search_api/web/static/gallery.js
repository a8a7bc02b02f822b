/*
 * FacePass pages: what both show of an answer. The status line (a live region) and the
 * gallery of photos: square thumbnails with the matched face centred, best match first; a tap
 * opens the screen-size preview, Download saves the original (or the preview when the event
 * withholds originals). Used by facepass.js (a search's results) and notify.js (a "notify me"
 * subscription's photos, /m/{token}); both pages have the same #results, #gallery and #viewer.
 * Vanilla JavaScript, no build step, no third-party code: the pages work offline on a LAN.
 */
(function () {
  'use strict';

  var FacePass = window.FacePass = window.FacePass || {};

  /**
   * Show one message in a live region (screen readers announce it).
   * kind: 'busy' (with a spinner), 'info', 'success' or 'error'.
   */
  FacePass.setStatus = function (box, kind, text) {
    box.className = 'status status-' + kind;
    box.textContent = '';
    if (kind === 'busy') {
      var spinner = document.createElement('span');
      spinner.className = 'spinner';
      spinner.setAttribute('aria-hidden', 'true');
      box.appendChild(spinner);
    }
    box.appendChild(document.createTextNode(text));
    box.dataset.kind = kind;
  };

  /** Empty a live region (it hides: `.status:empty`). */
  FacePass.clearStatus = function (box) {
    box.className = 'status';
    box.textContent = '';
    delete box.dataset.kind;
  };

  var results = document.getElementById('results');
  var heading = document.getElementById('results-heading');
  var gallery = document.getElementById('gallery');
  var viewer = document.getElementById('viewer');
  var viewerImage = document.getElementById('viewer-image');
  var viewerDownload = document.getElementById('viewer-download');
  var viewerClose = document.getElementById('viewer-close');
  if (!results || !gallery || !viewer) return;

  /** The result shown in the viewer. */
  var viewed = null;

  /** File name for a downloaded photo: its id and the extension of its type. */
  function fileName(photoId, type) {
    var extension = { 'image/png': '.png', 'image/webp': '.webp', 'image/heic': '.heic' };
    return photoId.replace(/[^A-Za-z0-9._-]/g, '_') + (extension[type] || '.jpg');
  }

  /** The picture for the grid, the one for the full-screen view, and the one to save. */
  function thumbnailOf(result) { return result.thumbnail_url || result.preview_url || result.url; }
  function previewOf(result) { return result.preview_url || result.url || result.thumbnail_url; }
  function downloadOf(result) { return result.original_url || result.preview_url || result.url; }

  /**
   * Save a photo (the original, or the preview when the event withholds originals). Its
   * presigned URL is on another origin, where a link's `download` attribute is ignored, so
   * fetch it and save the bytes; if the storage does not allow that (CORS), open the photo
   * instead and let the person save it from there.
   */
  function download(result, button) {
    var url = downloadOf(result);
    button.disabled = true;
    fetch(url, { credentials: 'omit', referrerPolicy: 'no-referrer' })
      .then(function (response) {
        if (!response.ok) throw new Error('HTTP ' + response.status);
        return response.blob();
      })
      .then(function (blob) {
        var objectUrl = URL.createObjectURL(blob);
        var link = document.createElement('a');
        link.href = objectUrl;
        link.download = fileName(result.photo_id, blob.type);
        document.body.appendChild(link);
        link.click();
        link.remove();
        setTimeout(function () { URL.revokeObjectURL(objectUrl); }, 60000);
      })
      .catch(function () {
        window.open(url, '_blank', 'noopener,noreferrer');
      })
      .finally(function () {
        button.disabled = false;
      });
  }

  /**
   * Square thumbnails crop the photo (object-fit: cover): put the matched face (its bbox, in
   * the photo's upright pixels, `width` x `height`) at the centre of the square, as far as
   * the photo reaches. With the photo scaled to cover the square, the overflow along its long
   * side is shifted so that the face's centre lands mid-square, then clamped to the edges.
   */
  function centerOnFace(img, result) {
    var box = result.face && result.face.bbox;
    var width = result.width || img.naturalWidth;
    var height = result.height || img.naturalHeight;
    if (!box || !width || !height) return;
    var fx = (box[0] + box[2]) / 2 / width;
    var fy = (box[1] + box[3]) / 2 / height;
    var aspect = width / height;
    var clamp = function (v) { return (Math.min(1, Math.max(0, v)) * 100).toFixed(1) + '%'; };
    var x = aspect > 1 ? (fx * aspect - 0.5) / (aspect - 1) : 0.5;
    var y = aspect < 1 ? (fy / aspect - 0.5) / (1 / aspect - 1) : 0.5;
    img.style.objectPosition = clamp(x) + ' ' + clamp(y);
  }

  /** The full-screen view of one result: its preview, Download, Close (or Escape). */
  function openViewer(result) {
    viewed = result;
    viewerImage.src = previewOf(result);
    viewerImage.alt = 'Photo ' + result.photo_id;
    if (typeof viewer.showModal === 'function') {
      viewer.showModal();
    } else {
      window.open(previewOf(result), '_blank', 'noopener,noreferrer');
    }
  }

  function closeViewer() {
    if (viewer.open) viewer.close();
  }

  viewer.addEventListener('close', function () {
    viewerImage.removeAttribute('src');
    viewed = null;
  });
  viewerClose.addEventListener('click', closeViewer);
  viewerDownload.addEventListener('click', function () {
    if (viewed) download(viewed, viewerDownload);
  });
  viewer.addEventListener('click', function (event) {
    if (event.target === viewer) closeViewer();  // the backdrop
  });

  /** One gallery item: the thumbnail (opens the preview) and its actions. */
  function photoItem(result, index, count) {
    var item = document.createElement('li');
    item.className = 'photo';
    item.dataset.photoId = result.photo_id;
    item.dataset.similarity = String(result.similarity);

    var link = document.createElement('a');
    link.href = previewOf(result);
    link.target = '_blank';
    link.rel = 'noopener noreferrer';
    link.className = 'thumb';
    link.addEventListener('click', function (event) {
      if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
      event.preventDefault();
      openViewer(result);
    });
    var img = document.createElement('img');
    img.src = thumbnailOf(result);
    img.alt = 'Photo ' + (index + 1) + ' of ' + count + (index === 0 ? ', best match' : '') +
      ' (opens it large)';
    img.loading = 'lazy';
    img.decoding = 'async';
    img.referrerPolicy = 'no-referrer';
    if (result.width && result.height) {
      centerOnFace(img, result);
    } else {
      img.addEventListener('load', function () { centerOnFace(img, result); });
    }
    link.appendChild(img);
    item.appendChild(link);

    var actions = document.createElement('div');
    actions.className = 'actions';
    var button = document.createElement('button');
    button.type = 'button';
    button.className = 'secondary';
    button.textContent = 'Download';
    button.setAttribute('aria-label', 'Download photo ' + (index + 1));
    button.addEventListener('click', function () { download(result, button); });
    actions.appendChild(button);
    item.appendChild(actions);
    return item;
  }

  FacePass.gallery = {
    /** Hide the gallery and drop its photos. */
    clear: function () {
      gallery.textContent = '';
      results.hidden = true;
    },
    /**
     * Show `found` (results in the search answer's shape) best match first; hidden when
     * there is none. Returns how many are shown.
     */
    show: function (found) {
      var sorted = (found || []).slice().sort(function (a, b) {
        return b.similarity - a.similarity;
      });
      gallery.textContent = '';
      sorted.forEach(function (result, index) {
        gallery.appendChild(photoItem(result, index, sorted.length));
      });
      heading.textContent = 'Your photos (' + sorted.length + ')';
      results.hidden = sorted.length === 0;
      return sorted.length;
    },
  };
})();
