;;; complete.el --- drive reaper-lsp from a batch Emacs  -*- lexical-binding: t; -*-

;; Run by tests/e2e/test_emacs.py as `emacs --batch -Q -l complete.el'.  Configures the client
;; named by REAPER_TEST_CLIENT (eglot or lsp-mode) with editors/emacs/reaper-lsp.el exactly as
;; its README says, opens REAPER_TEST_FILE at REAPER_TEST_LINE:REAPER_TEST_COLUMN (1-based line,
;; 0-based column), completes there (`completion-at-point', or company's `company-complete'
;; when REAPER_TEST_UI is "company") and runs `reaper-status' (and, when asked by
;; REAPER_TEST_SIGN_IN / REAPER_TEST_CHAT, `reaper-sign-in', `reaper-sign-out', `reaper-chat';
;; REAPER_TEST_WAIT_MESSAGE waits for a message matching it), and writes what happened, with
;; every message shown, to REAPER_TEST_OUT as JSON.  Every failure is written there too.

(require 'package)
(require 'json)
(require 'cl-lib)
(add-to-list 'package-directory-list "/usr/share/emacs/site-lisp/elpa")
(package-initialize)

(defvar reaper-test-client (getenv "REAPER_TEST_CLIENT"))
(defvar reaper-test-result nil "Alist written to REAPER_TEST_OUT.")

(defun reaper-test-note (key value)
  (push (cons key value) reaper-test-result))

(defun reaper-test-wait (what predicate &optional seconds)
  "Process server output until PREDICATE holds; signal an error naming WHAT after SECONDS."
  (let ((deadline (+ (float-time) (or seconds 20))))
    (while (not (funcall predicate))
      (when (> (float-time) deadline)
        (error "timed out waiting for %s" what))
      (accept-process-output nil 0.05))))

(defvar reaper-test-messages nil "Every message shown, newest first.")
(advice-add 'message :before
            (lambda (format &rest args)
              (when format (push (apply #'format-message format args) reaper-test-messages))))

(defun reaper-test-message-matching (regexp)
  (cl-find-if (lambda (text) (string-match-p regexp text)) reaper-test-messages))

(add-to-list 'load-path (getenv "REAPER_EMACS_DIR"))
(require 'reaper-lsp)

(defun reaper-test-start-eglot ()
  ;; The README's set-up; `find-file' has run `prog-mode-hook', and `eglot-ensure' connects
  ;; after the next command.
  (run-hooks 'post-command-hook)
  (reaper-test-wait "eglot to connect" (lambda () (reaper-lsp--eglot-server)))
  (reaper-test-note 'server (plist-get (eglot--server-info (eglot-current-server)) :name)))

(defun reaper-test-start-lsp-mode (root)
  (require 'lsp-mode)
  (setq lsp-session-file (expand-file-name "lsp-session" (getenv "HOME"))
        lsp-enable-suggest-server-download nil
        lsp-enable-file-watchers nil
        lsp-auto-guess-root nil)
  (reaper-lsp-lsp-mode-setup)
  ;; What `lsp' would ask the user: import the project root.
  (lsp-workspace-folders-add root)
  ;; What `lsp-deferred' (the README's hook) calls once the buffer is shown in a window.
  (lsp)
  (reaper-test-wait "lsp-mode to initialize reaper-lsp"
                    (lambda ()
                      (when-let ((ws (reaper-lsp--lsp-mode-workspace)))
                        (eq (lsp--workspace-status ws) 'initialized))))
  (reaper-test-note 'server (symbol-name (lsp--client-server-id
                                          (lsp--workspace-client
                                           (reaper-lsp--lsp-mode-workspace))))))

(defun reaper-test-run ()
  (let* ((file (getenv "REAPER_TEST_FILE"))
         (line (string-to-number (getenv "REAPER_TEST_LINE")))
         (column (string-to-number (getenv "REAPER_TEST_COLUMN"))))
    (when (equal reaper-test-client "eglot")
      (require 'eglot)
      (reaper-lsp-eglot-setup)
      (add-hook 'prog-mode-hook #'eglot-ensure))
    (find-file file)
    (pcase reaper-test-client
      ("eglot" (reaper-test-start-eglot))
      ("lsp-mode" (reaper-test-start-lsp-mode (file-name-directory file)))
      (_ (error "unknown REAPER_TEST_CLIENT %S" reaper-test-client)))
    (goto-char (point-min))
    (forward-line (1- line))
    (move-to-column column)
    (reaper-test-note 'capf (format "%S" completion-at-point-functions))
    (if (equal (getenv "REAPER_TEST_UI") "company")
        ;; What pressing the key bound to `company-complete' does: pick the (only) candidate.
        (progn (require 'company)
               (company-mode 1)
               (company-complete))
      (completion-at-point))
    (reaper-test-note 'text (buffer-substring-no-properties (point-min) (point-max)))
    (let ((status (reaper-status)))
      (reaper-test-note 'status_version (reaper-lsp--get status :version))
      (reaper-test-note 'status_chain (append (reaper-lsp--get status :completionChain) nil)))
    (reaper-test-note 'status_message (reaper-test-message-matching "^reaper-lsp [0-9]"))
    (reaper-test-note 'status_buffer (with-current-buffer "*reaper-status*" (buffer-string)))
    (when-let ((expected (getenv "REAPER_TEST_WAIT_MESSAGE")))
      (reaper-test-wait (format "a message like %s" expected)
                        (lambda () (reaper-test-message-matching expected))))
    (when (getenv "REAPER_TEST_SIGN_IN")
      (let (browsed)
        (setq browse-url-browser-function (lambda (url &rest _) (push url browsed)))
        (reaper-sign-in)
        (reaper-test-note 'sign_in_code (current-kill 0))
        (reaper-test-note 'sign_in_prompt (reaper-test-message-matching "enter code"))
        (reaper-test-note 'browsed browsed)
        (reaper-test-wait "the sign-in to finish"
                          (lambda () (reaper-test-message-matching "signed in to")))
        (reaper-test-note 'signed_in (reaper-test-message-matching "signed in to"))
        (reaper-sign-out)
        (reaper-test-note 'signed_out (reaper-test-message-matching "signed out of"))))
    (when-let ((prompt (getenv "REAPER_TEST_CHAT")))
      (reaper-chat prompt)
      (reaper-test-wait "the chat answer" (lambda () (reaper-test-message-matching "chat answered")))
      (reaper-test-note 'chat_message (reaper-test-message-matching "chat answered"))
      (reaper-test-note 'chat_buffer (with-current-buffer "*reaper-chat*" (buffer-string))))))

(condition-case err
    (reaper-test-run)
  (error (reaper-test-note 'error (error-message-string err))))

(reaper-test-note 'messages (reverse reaper-test-messages))

(with-temp-file (getenv "REAPER_TEST_OUT")
  (insert (json-encode reaper-test-result)))

;; Stop the server before leaving so that no process outlives the test.
(ignore-errors
  (pcase reaper-test-client
    ("eglot" (eglot-shutdown (eglot-current-server)))
    ("lsp-mode" (lsp-workspace-shutdown (reaper-lsp--lsp-mode-workspace)))))
(kill-emacs 0)
